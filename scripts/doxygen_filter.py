#!/usr/bin/env python3
# Copyright 2026 The pyscope Authors.
# SPDX-License-Identifier: Apache-2.0
"""Doxygen input filter: reads pyscope's Abseil-style header comments.

pyscope's headers document every declaration with plain `//` comments right
above it, as Abseil does. Doxygen reads only its own comment markers, so
this filter (FILTER_PATTERNS in docs/Doxyfile.in) rewrites a header before
Doxygen parses it, keeping every line where it was (warnings then name the
right line):

- the comment at the top of the file (after the copyright and SPDX lines)
  becomes the file's documentation (`/// \\file`);
- a comment block directly above a declaration, at namespace, class or enum
  level, becomes its documentation (`///`); a trailing `// ...` after a
  member or enumerator becomes `///< ...`;
- inside those comments, indented example code becomes a code block, and
  characters Doxygen would read as commands or HTML are escaped;
- comments inside function bodies and above preprocessor lines other than
  `#define` stay plain comments.

Usage: doxygen_filter.py FILE (prints the filtered text).
"""

import re
import sys

LIST_ITEM = re.compile(r'^\s*(\d+\.|[-*])\s')
SCOPE_OPENER = re.compile(
    r'^\s*(namespace\b|(template\s*<.*>\s*)?(class|struct|union|enum)\b|'
    r'extern\s+"C"|PYSCOPE_\w+\s+(class|struct))')


def escape_prose(text):
  """Escapes Doxygen command and HTML characters outside `code` spans."""
  parts = text.split('`')
  unmatched = len(parts) % 2 == 0  # a code span that goes on next line
  for i in range(len(parts)):
    if i % 2 == 0 or (unmatched and i == len(parts) - 1):
      part = parts[i].replace('\\', '\\\\')
      parts[i] = re.sub(r'([@#<>&%$])', r'\\\1', part)
  if unmatched:
    # Doxygen does not join a code span across comment lines: keep the
    # backtick as a literal character.
    last = parts.pop()
    parts[-1] = parts[-1] + '\\`' + last
  return '`'.join(parts)


def code_depth_changes(line):
  """The braces of a code line, ignoring strings, chars and comments."""
  line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
  line = re.sub(r"'(\\.|[^'\\])*'", "''", line)
  line = line.split('//', 1)[0]
  return [c for c in line if c in '{}']


def convert_block(lines, indent):
  """Turns the text of one comment block into Doxygen comment lines."""
  texts = []
  for line in lines:
    body = line.strip()[2:]
    texts.append(body[1:] if body.startswith(' ') else body)
  # A code span broken over two lines: Doxygen does not join it, so its end
  # moves up to the line where it starts (the line count stays).
  for i in range(len(texts) - 1):
    if texts[i].count('`') % 2 == 1 and '`' in texts[i + 1]:
      end = texts[i + 1].index('`') + 1
      texts[i] = texts[i] + ' ' + texts[i + 1][:end].lstrip()
      texts[i + 1] = texts[i + 1][end:].lstrip()
  out = []
  in_code = False
  in_list = False
  for i, text in enumerate(texts):
    prefix = indent + '/// '
    blank = text.strip() == ''
    indented = text.startswith('  ') and not blank
    if in_code:
      if indented:
        out.append(prefix + text)
        continue
      out[-1] += ' \\endcode'
      in_code = False
    if blank:
      in_list = False
      out.append(prefix.rstrip())
      continue
    if LIST_ITEM.match(text):
      in_list = True
    if indented and not in_list and (i == 0 or texts[i - 1].strip() == ''):
      # Example code: opened on the blank line before it (same line count).
      if out:
        out[-1] = out[-1].rstrip() + ' \\code{.cpp}'
        out.append(prefix + text)
      else:
        out.append(prefix + '\\code{.cpp} ' + text)
      in_code = True
      continue
    out.append(prefix + escape_prose(text))
  if in_code:
    out[-1] += ' \\endcode'
  return out


def filter_header(source):
  lines = source.split('\n')
  out = list(lines)
  n = len(lines)
  # 1. The file comment: the leading comment block. Copyright and SPDX
  #    lines are dropped (kept as empty lines).
  i = 0
  while i < n and lines[i].startswith('//'):
    i += 1
  head = lines[:i]
  keep = [j for j, line in enumerate(head)
          if 'Copyright' not in line and 'SPDX-License-Identifier' not in line]
  while keep and head[keep[0]].strip() == '//':
    keep.pop(0)
  for j in range(i):
    out[j] = ''
  if i > 0:
    # On the line before the description (a copyright or SPDX line).
    out[keep[0] - 1 if keep and keep[0] > 0 else 0] = '/// \\file'
  if keep:
    converted = convert_block([head[j] for j in keep], '')
    for j, text in zip(keep, converted):
      out[j] = text
  # 2. Declarations: track whether we are at namespace/class level.
  stack = []  # True for a scope that holds declarations, False for a body
  pending_scope = False
  j = i
  while j < n:
    line = lines[j]
    stripped = line.strip()
    at_decl_level = all(stack)
    if stripped.startswith('//'):
      k = j
      while k < n and lines[k].strip().startswith('//'):
        k += 1
      follower = lines[k].strip() if k < n else ''
      documents = (at_decl_level and follower != '' and
                   (not follower.startswith('#') or
                    follower.startswith('#define')) and
                   not follower.startswith('}') and
                   not re.match(r'^(public|private|protected):', follower))
      if documents:
        indent = line[:len(line) - len(line.lstrip())]
        converted = convert_block(lines[j:k], indent)
        out[j:k] = converted
      j = k
      continue
    # A trailing comment on a member or enumerator.
    match = re.match(r'^(\s*[^/].*?[;,])(\s+)//\s?(.*)$', line)
    if match and at_decl_level and not stripped.startswith('#'):
      out[j] = '%s%s///< %s' % (match.group(1), match.group(2),
                                 escape_prose(match.group(3)))
    if stripped.startswith('#'):
      j += 1
      continue
    if SCOPE_OPENER.match(line) and ';' not in line.split('{')[0]:
      pending_scope = True
    for brace in code_depth_changes(line):
      if brace == '{':
        stack.append(pending_scope)
        pending_scope = False
      elif stack:
        stack.pop()
    if stripped.endswith(';'):
      pending_scope = False
    j += 1
  return '\n'.join(out)


def main(argv):
  with open(argv[1], encoding='utf-8') as f:
    sys.stdout.write(filter_header(f.read()))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
