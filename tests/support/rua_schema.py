#!/usr/bin/python3
"""Prints the RFC 7489 Appendix C schema (tests/data/dmarc/rua.xsd, kept
verbatim) repaired the way its users repair it (docs/dmarc_reports.md):
the targetNamespace attribute dropped (its type references name no
namespace) and the IPAddress pattern, wrapped over three lines in the RFC
text, joined. Each repair must apply exactly once.

  rua_schema.py RUA.XSD > repaired.xsd
"""
import sys

s = open(sys.argv[1]).read()
repairs = [('\n     targetNamespace="http://dmarc.org/dmarc-xml/0.1">', '>'),
           ('{3}\n' + ' ' * 19, '{3}'),
           ('|\n' + ' ' * 19 + '([A-F', '|([A-F')]
for old, new in repairs:
    if s.count(old) != 1:
        sys.exit("rua_schema.py: the schema changed: %r found %d times" % (old, s.count(old)))
    s = s.replace(old, new, 1)
sys.stdout.write(s)
