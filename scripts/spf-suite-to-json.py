#!/usr/bin/env python3
"""Converts the OpenSPF RFC 7208 test suite (YAML, shipped by Debian's
python3-spf) into the JSON that tests/test_spf_suite.c and bench/ read.

The zone of each scenario is rewritten into the format of src/dns/dns_zone.h
with the conventions of the suite's reference driver (pyspf's testspf.py):
- an SPF (type 99) record is also served as TXT, unless the name has an
  explicit TXT record;
- "TIMEOUT" at a name makes every query for a type not listed before it time
  out, and hides the records listed after it;
- a value "NONE" for SPF means no SPF record (the generated TXT still holds
  "NONE", as in the driver, so the name is not a void lookup).

usage: spf-suite-to-json.py rfc7208-tests.yml[.gz] out.json
"""
import gzip
import json
import sys

import yaml


def as_strings(v):
    return [v] if isinstance(v, str) else list(v)


def convert_name(records):
    explicit_txt = any(isinstance(r, dict) and 'TXT' in r for r in records)
    ordered, generated = [], []
    for r in records:
        if not isinstance(r, dict):
            ordered.append(r)  # 'TIMEOUT'
            continue
        for t, v in r.items():
            if t in ('TXT', 'SPF'):
                v = as_strings(v)
            if t == 'SPF' and not explicit_txt:
                generated.append({'type': 'TXT', 'value': v})
            if t in ('TXT', 'SPF') and v == ['NONE']:
                continue
            ordered.append({'type': t, 'value': v})
    ordered += generated
    out = []
    for r in ordered:
        if r == 'TIMEOUT':
            out.append({'type': 'TIMEOUT'})
            break
        out.append(r)
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    opener = gzip.open if src.endswith('.gz') else open
    with opener(src, 'rt', encoding='utf-8') as f:
        docs = list(yaml.safe_load_all(f))
    scenarios = []
    for d in docs:
        zone = {name: convert_name(recs) for name, recs in d['zonedata'].items()}
        tests = []
        for name, t in d['tests'].items():
            res = t['result']
            tests.append({
                'name': name,
                'spec': str(t.get('spec', '')),
                'description': t.get('description', ''),
                'helo': t['helo'],
                'host': t['host'],
                'mailfrom': t['mailfrom'],
                'result': as_strings(res),
                'explanation': t.get('explanation'),
            })
        scenarios.append({'description': d['description'], 'zone': zone,
                          'tests': tests})
    with open(dst, 'w', encoding='utf-8') as f:
        json.dump({'source': src, 'scenarios': scenarios}, f, indent=1,
                  ensure_ascii=False)


if __name__ == '__main__':
    main()
