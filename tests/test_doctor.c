/* sesame doctor's audit (auth/doctor.c, auth/doctor_spf.c) on in-memory
 * zones: a fully correct domain, then one scenario per fault. Each scenario
 * starts from the correct domain, removes or adds a few records, and says
 * which findings it wants; every other problem found fails the test, every
 * problem must carry a fix, and every check must report something. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/doctor.h"
#include "dns/dns_zone.h"

/* Public keys (SubjectPublicKeyInfo, base64) made with openssl genpkey. */
#define KEY_RSA2048 \
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA36XHuh0aG1rvKH1HWpyYBToFsUiC" \
    "kfXRt+lTcQhfrHcSwDkG8tILLQ2HEdGQUXIZx6400SMbk2FNc4hTrOumC05fQvEw9NCsXrBB" \
    "+UEf8YE82PqvP7TSnhSZEthi/DlZoPOHKLibqMojK7Mm+OyoJPn3NeWrdwGpmPkSZFMDxepd" \
    "qXclE/DLwJlSx/0q+s5Dbrz7xodqnWYw35yfiyZ0hNmgIWXGF/t3lx7TmKspcnxdV/t9s8r6" \
    "6ham/QzZjpLUZTrkrIHeviwAdkjzC4RC9Ib+wW0VtHLniMDrfm3r1m/SBD5klY55WXfeoHCM" \
    "6eItETCJ+tpUd0WhND5ijpi2WQIDAQAB"
#define KEY_RSA1024 \
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCLozNnfp1EIfyI6Kg7Fa5Eo3L6cVu9HHQ" \
    "M+5lck3U6hHntMRgxMA/mQ0coMxi3MwhVZ8MJEk7yo7v4ihP5mnzZR41ti8v2Qv0zWIHwMij" \
    "4Qd3nkGictKFbQJkFaOFTCnz9WfmCEH+UO/OohsjqE7XdNsJROZSUjkGC4J3LxXhvQIDAQAB"
#define KEY_RSA512 \
    "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBANAP7IgmgbmBMGAT+4I1rZVl8QKH6F5chXpeOZzx" \
    "pP6qEEviPElNaqLVtjJV7wWuumly1OAA/3OFe6RXZszjpDMCAwEAAQ=="
#define KEY_ED25519 "AtH6D9Qjk722oIAAjGJcwNS3g+/Yxc2ezCjcPejnxtg="

/* What a scenario leaves out of the correct domain. */
enum {
    SKIP_MX = 1 << 0,        /* @ MX 10 mx.@ */
    SKIP_SPF = 1 << 1,       /* @ TXT v=spf1 mx ip4:192.0.2.0/24 -all */
    SKIP_DKIM = 1 << 2,      /* s1._domainkey.@ (RSA 2048) */
    SKIP_DMARC = 1 << 3,     /* _dmarc.@ p=reject, rua to the domain */
    SKIP_BOUNCE_MX = 1 << 4, /* bounce.@ MX */
    SKIP_BOUNCE_SPF = 1 << 5,/* bounce.@ TXT v=spf1 mx -all */
    SKIP_STS = 1 << 6,       /* _mta-sts.@ TXT */
    SKIP_STS_HOST = 1 << 7,  /* mta-sts.@ A */
    SKIP_TLSRPT = 1 << 8,    /* _smtp._tls.@ TXT */
    NO_SELECTOR = 1 << 9,    /* no --selector (common names are tried) */
    NO_GUESS = 1 << 10,      /* ... and none are tried */
    NO_MAIL_FROM = 1 << 11,  /* no --mail-from */
};

/* A record; "@" in the name stands for the scenario's domain. Type "TXTS"
 * splits the value into character-strings at '|'; "TIMEOUT" makes the
 * name's other types time out. */
struct rr {
    const char *name, *type, *value;
};

struct want {
    enum doctor_check check;
    enum doctor_status status;
    const char *text;  /* in the message */
    const char *fix;   /* in the fix, or NULL */
};

struct scenario {
    const char *name;
    unsigned flags;
    struct rr rrs[10];
    const char *selectors[4];  /* none: "s1" */
    const char *mail_from;     /* NULL: "bounce" */
    const char *domain;        /* NULL: example.test */
    struct want want[5];
};

#define MX DOCTOR_MX
#define SPF DOCTOR_SPF
#define DKIM DOCTOR_DKIM
#define DMARC DOCTOR_DMARC
#define MF DOCTOR_MAIL_FROM
#define STS DOCTOR_MTA_STS
#define TLSRPT DOCTOR_TLS_RPT
#define OK DOCTOR_OK
#define WARN DOCTOR_WARN
#define ERR DOCTOR_ERROR
#define MISSING DOCTOR_MISSING
#define W(check, status, text) { check, status, text, NULL }
#define WF(check, status, text, fix) { check, status, text, fix }

static const struct scenario scenarios[] = {
    { "correct domain", 0, {{0}}, {0}, NULL, NULL, {{0}} },
    { "correct domain, MAIL FROM given in full", 0, {{0}}, {0}, "bounce.example.test", NULL,
      {{0}} },
    { "correct subdomain under the organizational domain's DMARC record", SKIP_DMARC,
      {{ "_dmarc.example.test", "TXT", "v=DMARC1; p=reject; rua=mailto:d@example.test" }},
      {0}, NULL, "shop.example.test",
      {W(DMARC, OK, "the organizational domain's record applies")} },
    { "redirect to a correct record", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 redirect=_spf.@" }, { "_spf.@", "TXT", "v=spf1 mx -all" }},
      {0}, NULL, NULL, {W(SPF, OK, "2 of 10 DNS lookups")} },

    /* ---- MX ---- */
    { "no MX", SKIP_MX, {{0}}, {0}, NULL, NULL,
      {WF(MX, MISSING, "has no MX record", "example.test. IN MX 10 mx.example.test.")} },
    { "null MX", SKIP_MX, {{ "@", "MX", "0 ." }}, {0}, NULL, NULL,
      {WF(MX, WARN, "null MX (RFC 7505)", "MX 0 ."),
       W(STS, OK, "not needed"), W(TLSRPT, OK, "not needed")} },
    { "null MX mixed with others", 0, {{ "@", "MX", "0 ." }}, {0}, NULL, NULL,
      {W(MX, ERR, "RFC 7505 §3 forbids mixing")} },
    { "MX host without address", SKIP_MX, {{ "@", "MX", "10 nohost.@" }}, {0}, NULL, NULL,
      {W(MX, ERR, "nohost.example.test of example.test has no A or AAAA record")} },
    { "MX is an IP literal", SKIP_MX, {{ "@", "MX", "10 192.0.2.25" }}, {0}, NULL, NULL,
      {W(MX, ERR, "points to the IP address 192.0.2.25")} },
    { "MX is a CNAME", SKIP_MX,
      {{ "@", "MX", "10 alias.@" }, { "alias.@", "CNAME", "mx.example.test" }}, {0}, NULL, NULL,
      {WF(MX, WARN, "alias (CNAME) of mx.example.test", "IN MX 10 mx.example.test.")} },
    { "MX host on loopback", 0, {{ "@", "MX", "20 lo.@" }, { "lo.@", "A", "127.0.0.1" }},
      {0}, NULL, NULL, {W(MX, ERR, "loopback")} },

    /* ---- SPF ---- */
    { "no SPF", SKIP_SPF, {{0}}, {0}, NULL, NULL,
      {WF(SPF, MISSING, "has no SPF record", "\"v=spf1 mx -all\"")} },
    { "SPF lookalike", SKIP_SPF, {{ "@", "TXT", "spf1 mx -all" }}, {0}, NULL, NULL,
      {W(SPF, MISSING, "does not start with 'v=spf1 '")} },
    { "two SPF records", 0, {{ "@", "TXT", "v=spf1 include:_spf.partner.test ~all" },
                             { "_spf.partner.test", "TXT", "v=spf1 ip4:198.51.100.0/24 -all" }},
      {0}, NULL, NULL,
      {WF(SPF, ERR, "publishes 2 SPF records",
         "v=spf1 mx ip4:192.0.2.0/24 include:_spf.partner.test -all")} },
    { "SPF syntax error", SKIP_SPF, {{ "@", "TXT", "v=spf1 ip4:192.0.2.300 -all" }}, {0}, NULL,
      NULL, {W(SPF, ERR, "syntax error: invalid IPv4 network: 'ip4:192.0.2.300'")} },
    { "more than 10 DNS lookups", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 include:_a.@ include:_b.@ -all" },
       { "_a.@", "TXT", "v=spf1 mx:@ a:mx.@ mx:@ a:mx.@ mx:@ ~all" },
       { "_b.@", "TXT", "v=spf1 a:mx.@ a:mx.@ a:mx.@ a:mx.@ include:_c.@ ~all" },
       { "_c.@", "TXT", "v=spf1 ip4:192.0.2.1 ~all" }}, {0}, NULL, NULL,
      {W(SPF, ERR, "needs 12 DNS lookups when no term matches (limit 10, RFC 7208 §4.6.4): "
                   "example.test 2, _a.example.test 5, _b.example.test 5, _c.example.test 0. "
                   "The 11th is 'a:mx.example.test' in the record of _b.example.test, reached "
                   "via example.test -> include:_b.example.test")} },
    { "void lookups", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 a:gone1.@ a:gone2.@ mx:gone3.@ ip4:192.0.2.0/24 -all" }}, {0},
      NULL, NULL,
      {W(SPF, ERR, "3 void lookups (names that do not exist or have no records: "
                   "a:gone1.example.test, a:gone2.example.test, mx:gone3.example.test)")} },
    { "+all", SKIP_SPF, {{ "@", "TXT", "v=spf1 mx +all" }}, {0}, NULL, NULL,
      {WF(SPF, ERR, "has '+all': every host", "IN TXT \"v=spf1 mx -all\"")} },
    { "bare all is +all", SKIP_SPF, {{ "@", "TXT", "v=spf1 mx all" }}, {0}, NULL, NULL,
      {WF(SPF, ERR, "has 'all': every host", "IN TXT \"v=spf1 mx -all\"")} },
    { "?all", SKIP_SPF, {{ "@", "TXT", "v=spf1 mx ?all" }}, {0}, NULL, NULL,
      {WF(SPF, WARN, "ends in '?all'", "\"v=spf1 mx -all\"")} },
    { "no all, no redirect", SKIP_SPF, {{ "@", "TXT", "v=spf1 mx" }}, {0}, NULL, NULL,
      {WF(SPF, WARN, "no 'all' term and no 'redirect='", "\"v=spf1 mx -all\"")} },
    { "ptr", SKIP_SPF, {{ "@", "TXT", "v=spf1 ptr mx -all" }}, {0}, NULL, NULL,
      {WF(SPF, WARN, "uses 'ptr', which RFC 7208 §5.5", "\"v=spf1 mx -all\"")} },
    { "include of a domain without SPF", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 mx include:_spf.nowhere.test -all" }}, {0}, NULL, NULL,
      {W(SPF, ERR, "points to _spf.nowhere.test, which has no SPF record")} },
    { "include that passes everything", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 include:_x.@ -all" }, { "_x.@", "TXT", "v=spf1 +all" }}, {0},
      NULL, NULL,
      {W(SPF, ERR, "SPF record of _x.example.test (reached via example.test -> "
                   "include:_x.example.test) has '+all'")} },
    { "include with a syntax error", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 include:_x.@ -all" }, { "_x.@", "TXT", "v=spf1 foo:bar -all" }},
      {0}, NULL, NULL, {W(SPF, ERR, "has a syntax error: unknown mechanism")} },
    { "include that times out", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 mx include:_slow.@ -all" }, { "_slow.@", "TIMEOUT", "" }}, {0},
      NULL, NULL, {W(SPF, ERR, "the DNS lookup of _slow.example.test failed")} },
    { "include loop", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 include:_a.@ -all" }, { "_a.@", "TXT", "v=spf1 include:@ -all" }},
      {0}, NULL, NULL, {W(SPF, ERR, "SPF loop")} },
    { "redirect and all", SKIP_SPF, {{ "@", "TXT", "v=spf1 mx -all redirect=_spf.@" }}, {0},
      NULL, NULL, {W(SPF, WARN, "has both 'all' and 'redirect='")} },
    { "terms after all", SKIP_SPF, {{ "@", "TXT", "v=spf1 -all mx" }}, {0}, NULL, NULL,
      {W(SPF, WARN, "terms after 'all'")} },
    { "a name that cannot be a DNS name", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 mx a:x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaa.test -all" }}, {0}, NULL, NULL,
      {W(SPF, WARN, "is not a valid DNS name (labels of 1 to 63 characters, 253 in all): the "
                    "term never matches")} },
    { "terms with macros are counted, not followed", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 mx exists:%{i}._spf.@ include:%{d}._x.@ -all" }}, {0}, NULL,
      NULL, {W(SPF, OK, "3 of 10 DNS lookups, macros counted once")} },
    { "ip4:0.0.0.0/0", SKIP_SPF, {{ "@", "TXT", "v=spf1 ip4:0.0.0.0/0 -all" }}, {0}, NULL,
      NULL, {WF(SPF, ERR, "has 'ip4:0.0.0.0/0': every host", "\"v=spf1 -all\"")} },
    { "record over 450 bytes", SKIP_SPF,
      {{ "@", "TXT", "v=spf1 ip4:198.51.100.10 ip4:198.51.100.11 ip4:198.51.100.12 "
         "ip4:198.51.100.13 ip4:198.51.100.14 ip4:198.51.100.15 ip4:198.51.100.16 "
         "ip4:198.51.100.17 ip4:198.51.100.18 ip4:198.51.100.19 ip4:198.51.100.20 "
         "ip4:198.51.100.21 ip4:198.51.100.22 ip4:198.51.100.23 ip4:198.51.100.24 "
         "ip4:198.51.100.25 ip4:198.51.100.26 ip4:198.51.100.27 ip4:198.51.100.28 "
         "ip4:198.51.100.29 ip4:198.51.100.30 ip4:198.51.100.31 ip4:198.51.100.32 "
         "ip4:198.51.100.33 ip4:198.51.100.34 ip4:198.51.100.35 mx -all" }}, {0}, NULL, NULL,
      {W(SPF, WARN, "is 482 bytes")} },
    { "strings glued without a space", SKIP_SPF,
      {{ "@", "TXTS", "v=spf1 ip4:192.0.2.0/24 include:_spf.@|mx -all" },
       { "_spf.@", "TXT", "v=spf1 -all" }}, {0}, NULL, NULL,
      {W(SPF, WARN, "joined without a space"),
       W(SPF, ERR, "points to _spf.example.testmx, which has no SPF record")} },
    { "strings split inside a term are fine", SKIP_SPF,
      {{ "@", "TXTS", "v=spf1 ip4:192.0.|2.0/24 mx -all" }}, {0}, NULL, NULL, {{0}} },

    /* ---- DKIM ---- */
    { "DKIM key missing", 0, {{0}}, { "s1", "nokey" }, NULL, NULL,
      {W(DKIM, ERR, "selector 'nokey': no DKIM key at nokey._domainkey.example.test"),
       W(DKIM, OK, "selector 's1': RSA key of 2048 bits")} },
    { "DKIM selector given with capitals and a trailing dot", 0, {{0}}, { "S1." }, NULL, NULL,
      {W(DKIM, OK, "selector 's1': RSA key of 2048 bits at s1._domainkey.example.test")} },
    { "DKIM key through a CNAME", SKIP_DKIM,
      {{ "s1._domainkey.@", "CNAME", "s1.dkim.provider.test" },
       { "s1.dkim.provider.test", "TXT", "v=DKIM1; k=rsa; p=" KEY_RSA2048 }}, {0}, NULL, NULL,
      {W(DKIM, OK, "RSA key of 2048 bits")} },
    { "DKIM key revoked", SKIP_DKIM, {{ "s1._domainkey.@", "TXT", "v=DKIM1; k=rsa; p=" }}, {0},
      NULL, NULL, {W(DKIM, ERR, "is revoked (empty p=)")} },
    { "DKIM RSA 512", SKIP_DKIM,
      {{ "s1._domainkey.@", "TXT", "v=DKIM1; k=rsa; p=" KEY_RSA512 }}, {0}, NULL, NULL,
      {WF(DKIM, ERR, "RSA key of 512 bits is too short", "--bits 2048")} },
    { "DKIM RSA 1024", SKIP_DKIM,
      {{ "s1._domainkey.@", "TXT", "v=DKIM1; k=rsa; p=" KEY_RSA1024 }}, {0}, NULL, NULL,
      {WF(DKIM, WARN, "RSA key of 1024 bits", "--bits 2048")} },
    { "DKIM testing mode", SKIP_DKIM,
      {{ "s1._domainkey.@", "TXT", "v=DKIM1; t=y; k=rsa; p=" KEY_RSA2048 }}, {0}, NULL, NULL,
      {W(DKIM, WARN, "testing mode (t=y)")} },
    { "DKIM bad syntax", SKIP_DKIM, {{ "s1._domainkey.@", "TXT", "v=DKIM1; k=rsa; p" }}, {0},
      NULL, NULL, {W(DKIM, ERR, "has bad syntax")} },
    { "DKIM unknown k=", SKIP_DKIM,
      {{ "s1._domainkey.@", "TXT", "v=DKIM1; k=dsa; p=" KEY_RSA2048 }}, {0}, NULL, NULL,
      {WF(DKIM, ERR, "unknown key type k=dsa", "k=rsa or k=ed25519")} },
    { "DKIM p= not a key", SKIP_DKIM, {{ "s1._domainkey.@", "TXT", "v=DKIM1; p=AAAA" }}, {0},
      NULL, NULL, {W(DKIM, ERR, "is not an RSA public key")} },
    { "DKIM wrong version", SKIP_DKIM,
      {{ "s1._domainkey.@", "TXT", "v=DKIM2; p=" KEY_RSA2048 }}, {0}, NULL, NULL,
      {W(DKIM, ERR, "is not DKIM1")} },
    { "DKIM h=sha1 only", SKIP_DKIM,
      {{ "s1._domainkey.@", "TXT", "v=DKIM1; h=sha1; p=" KEY_RSA2048 }}, {0}, NULL, NULL,
      {W(DKIM, ERR, "h= that excludes sha256")} },
    { "DKIM two TXT records", 0,
      {{ "s1._domainkey.@", "TXT", "v=DKIM1; k=rsa; p=" KEY_RSA1024 }}, {0}, NULL, NULL,
      {W(DKIM, WARN, "has 2 TXT records"), W(DKIM, WARN, "RSA key of 1024 bits"),
       W(DKIM, OK, "RSA key of 2048 bits")} },
    { "DKIM Ed25519 only", SKIP_DKIM,
      {{ "s1._domainkey.@", "TXT", "v=DKIM1; k=ed25519; p=" KEY_ED25519 }}, {0}, NULL, NULL,
      {W(DKIM, OK, "Ed25519 key"), W(DKIM, WARN, "only Ed25519 keys")} },
    { "DKIM Ed25519 and RSA", 0,
      {{ "e1._domainkey.@", "TXT", "v=DKIM1; k=ed25519; p=" KEY_ED25519 }}, { "s1", "e1" },
      NULL, NULL, {W(DKIM, OK, "Ed25519 key"), W(DKIM, OK, "RSA key of 2048 bits")} },
    { "no selector, none found", NO_SELECTOR | SKIP_DKIM, {{0}}, {0}, NULL, NULL,
      {WF(DKIM, MISSING, "none of the common selectors (default, selector1, selector2, google, "
                        "s1, s2, k1, sesame)", "--selector")} },
    { "no selector, nothing tried", NO_SELECTOR | NO_GUESS, {{0}}, {0}, NULL, NULL,
      {W(DKIM, MISSING, "no --selector given: DKIM was not checked")} },
    { "no selector, common ones found", NO_SELECTOR | SKIP_DKIM,
      {{ "default._domainkey.@", "TXT", "v=DKIM1; k=rsa; p=" KEY_RSA2048 },
       { "google._domainkey.@", "TXT", "v=DKIM1; k=rsa; p=" KEY_RSA1024 },
       { "s2._domainkey.@", "TXT", "v=spf1 -all" }}, {0}, NULL, NULL,
      {W(DKIM, OK, "selector 'default' (found by trying common selector names): RSA key of "
                   "2048 bits"),
       W(DKIM, WARN, "selector 'google' (found by trying common selector names): RSA key of "
                     "1024 bits")} },

    /* ---- DMARC ---- */
    { "no DMARC", SKIP_DMARC, {{0}}, {0}, NULL, NULL,
      {WF(DMARC, MISSING, "no DMARC record at _dmarc.example.test",
         "_dmarc.example.test. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@"
         "example.test\"")} },
    { "no DMARC on a subdomain nor its organizational domain", SKIP_DMARC, {{0}}, {0}, NULL,
      "shop.example.test",
      {W(DMARC, MISSING, "no DMARC record at _dmarc.shop.example.test or "
                         "_dmarc.example.test")} },
    { "subdomain under an organizational p=none", SKIP_DMARC,
      {{ "_dmarc.example.test", "TXT", "v=DMARC1; p=none; rua=mailto:d@example.test" }}, {0},
      NULL, "shop.example.test", {W(DMARC, WARN, "p=none at _dmarc.example.test")} },
    { "subdomain under an organizational sp=reject", SKIP_DMARC,
      {{ "_dmarc.example.test", "TXT", "v=DMARC1; p=none; sp=reject; rua=mailto:d@example.test" }},
      {0}, NULL, "shop.example.test", {W(DMARC, OK, "(policy reject")} },
    { "invalid DMARC", SKIP_DMARC, {{ "_dmarc.@", "TXT", "v=DMARC1; p=bogus" }}, {0}, NULL,
      NULL, {W(DMARC, ERR, "is invalid: p= is not none, quarantine or reject")} },
    { "DMARC lookalike", SKIP_DMARC, {{ "_dmarc.@", "TXT", "v=dmarc1; p=reject" }}, {0}, NULL,
      NULL, {W(DMARC, ERR, "does not start with \"v=DMARC1\"")} },
    { "p=none", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=none; rua=mailto:d@example.test" }}, {0}, NULL, NULL,
      {WF(DMARC, WARN, "p=none at _dmarc.example.test: monitoring only",
         "\"v=DMARC1; p=quarantine; rua=mailto:d@example.test\"")} },
    { "pct<100", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=quarantine; pct=25; rua=mailto:d@example.test" }},
      {0}, NULL, NULL,
      {WF(DMARC, WARN, "pct=25", "\"v=DMARC1; p=quarantine; rua=mailto:d@example.test\"")} },
    { "sp=none", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.test" }}, {0},
      NULL, NULL, {W(DMARC, WARN, "subdomains of example.test are not protected")} },
    { "no rua", SKIP_DMARC, {{ "_dmarc.@", "TXT", "v=DMARC1; p=reject" }}, {0}, NULL, NULL,
      {WF(DMARC, WARN, "has no rua=",
         "\"v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.test\"")} },
    { "two DMARC records", 0, {{ "_dmarc.@", "TXT", "v=DMARC1; p=none" }}, {0}, NULL, NULL,
      {W(DMARC, ERR, "has 2 DMARC records")} },
    { "DMARC parser warnings", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=reject; adkim=x; rua=mailto:d@example.test" }}, {0},
      NULL, NULL, {W(DMARC, WARN, "adkim=x is not r or s")} },
    { "external rua without authorization", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=reject; rua=mailto:d@reports.test; "
                            "ruf=mailto:f@forensic.test" }}, {0}, NULL, NULL,
      {WF(DMARC, ERR, "rua=mailto:d@reports.test goes to another domain (reports.test), which "
                     "has not authorized",
         "example.test._report._dmarc.reports.test. IN TXT \"v=DMARC1\""),
       W(DMARC, ERR, "ruf=mailto:f@forensic.test goes to another domain")} },
    { "external rua with authorization", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=reject; rua=mailto:d@reports.test" },
       { "example.test._report._dmarc.reports.test", "TXT", "v=DMARC1" }}, {0}, NULL, NULL,
      {{0}} },
    { "rua in a subdomain needs no authorization", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=reject; rua=mailto:d@reports.example.test" }}, {0},
      NULL, NULL, {{0}} },

    /* ---- custom MAIL FROM ---- */
    { "MAIL FROM without MX", SKIP_BOUNCE_MX, {{0}}, {0}, NULL, NULL,
      {WF(MF, ERR, "the MAIL FROM domain bounce.example.test has no MX record",
         "bounce.example.test. IN MX 10 mx.example.test.")} },
    { "MAIL FROM that does not exist", SKIP_BOUNCE_MX | SKIP_BOUNCE_SPF, {{0}}, {0}, NULL,
      NULL,
      {W(MF, ERR, "bounce.example.test does not exist in DNS"),
       W(MF, ERR, "the MAIL FROM domain bounce.example.test has no SPF record")} },
    { "MAIL FROM without SPF", SKIP_BOUNCE_SPF, {{0}}, {0}, NULL, NULL,
      {W(MF, ERR, "the MAIL FROM domain bounce.example.test has no SPF record")} },
    { "MAIL FROM with null MX", SKIP_BOUNCE_MX, {{ "bounce.@", "MX", "0 ." }}, {0}, NULL, NULL,
      {W(MF, ERR, "has a null MX")} },
    { "MAIL FROM with +all", SKIP_BOUNCE_SPF, {{ "bounce.@", "TXT", "v=spf1 +all" }}, {0},
      NULL, NULL, {W(MF, ERR, "has '+all'")} },
    { "MAIL FROM outside the domain", 0, {{0}}, {0}, "bounce.other.test", NULL,
      {W(MF, ERR, "bounce.other.test is not under example.test")} },
    { "MAIL FROM is the domain itself", 0, {{0}}, {0}, "example.test", NULL,
      {W(MF, ERR, "is example.test itself")} },
    { "MAIL FROM with strict SPF alignment", SKIP_DMARC,
      {{ "_dmarc.@", "TXT", "v=DMARC1; p=reject; aspf=s; rua=mailto:d@example.test" }}, {0},
      NULL, NULL, {WF(MF, ERR, "aspf=s in the DMARC record", "aspf=r")} },

    /* ---- MTA-STS, TLS-RPT ---- */
    { "no MTA-STS", SKIP_STS | SKIP_STS_HOST, {{0}}, {0}, NULL, NULL,
      {WF(STS, WARN, "no MTA-STS policy", "mx: mx.example.test")} },
    { "MTA-STS with a bad id", SKIP_STS, {{ "_mta-sts.@", "TXT", "v=STSv1; id=not-ok!" }}, {0},
      NULL, NULL, {W(STS, ERR, "has an invalid id=")} },
    { "MTA-STS without id", SKIP_STS, {{ "_mta-sts.@", "TXT", "v=STSv1;" }}, {0}, NULL, NULL,
      {W(STS, ERR, "has no id=")} },
    { "MTA-STS policy host without address", SKIP_STS_HOST, {{0}}, {0}, NULL, NULL,
      {W(STS, ERR, "the policy host mta-sts.example.test has no address")} },
    { "two MTA-STS records", 0, {{ "_mta-sts.@", "TXT", "v=STSv1; id=2" }}, {0}, NULL, NULL,
      {W(STS, ERR, "has 2 v=STSv1 records")} },
    { "no TLS-RPT", SKIP_TLSRPT, {{0}}, {0}, NULL, NULL,
      {WF(TLSRPT, WARN, "no TLS-RPT record",
         "_smtp._tls.example.test. IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@"
         "example.test\"")} },
    { "TLS-RPT with a bad rua", SKIP_TLSRPT,
      {{ "_smtp._tls.@", "TXT", "v=TLSRPTv1; rua=ftp://example.test/r" }}, {0}, NULL, NULL,
      {W(TLSRPT, ERR, "has an invalid rua=")} },
    { "TLS-RPT with https rua", SKIP_TLSRPT,
      {{ "_smtp._tls.@", "TXT", "v=TLSRPTv1; rua=https://reports.example.test/tls" }}, {0},
      NULL, NULL, {{0}} },
};

static char *expand(const char *name, const char *domain, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (strcmp(name, "@") == 0)
        snprintf(out, outlen, "%s", domain);
    else if (n >= 2 && strcmp(name + n - 2, ".@") == 0)
        snprintf(out, outlen, "%.*s.%s", (int)(n - 2), name, domain);
    else
        snprintf(out, outlen, "%s", name);
    return out;
}

/* value with each "@" that ends a name ("_spf.@", "include:@") replaced by
 * the domain; the "@" of mailto:user@host stays. */
static const char *expand_value(const char *value, const char *domain, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = value; *p && o + 1 < outlen; p++) {
        bool ends = p[1] == '\0' || p[1] == ' ' || p[1] == '|';
        if (*p == '@' && ends && p > value && strchr(".:= ", p[-1])) {
            int n = snprintf(out + o, outlen - o, "%s", domain);
            o += n > 0 ? (size_t)n : 0;
            if (o >= outlen)
                o = outlen - 1;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

static void add(struct dns_zone *z, const char *domain, const char *name, const char *type,
                const char *raw)
{
    char owner[300], v[1200];
    const char *value = expand_value(raw, domain, v, sizeof v);
    expand(name, domain, owner, sizeof owner);
    if (strcmp(type, "TIMEOUT") == 0) {
        assert_int_equal(dns_zone_add_timeout(z, owner), 0);
        return;
    }
    if (strcmp(type, "TXTS") == 0) {
        uint8_t rdata[1024];
        size_t len = 0;
        const char *p = value;
        for (;;) {
            const char *bar = strchr(p, '|');
            size_t l = bar ? (size_t)(bar - p) : strlen(p);
            assert_true(l < 256 && len + l + 1 < sizeof rdata);
            rdata[len++] = (uint8_t)l;
            memcpy(rdata + len, p, l);
            len += l;
            if (!bar)
                break;
            p = bar + 1;
        }
        assert_int_equal(dns_zone_add_rdata(z, owner, DNS_T_TXT, rdata, len), 0);
        return;
    }
    if (dns_zone_add(z, owner, type, value) != 0)
        fail_msg("cannot add %s %s %s", owner, type, value);
}

static struct dns_zone *build_zone(const struct scenario *s, const char *d)
{
    struct dns_zone *z = dns_zone_new();
    assert_non_null(z);
    if (!(s->flags & SKIP_MX))
        add(z, d, "@", "MX", "10 mx.@");
    add(z, d, "mx.@", "A", "192.0.2.25");
    add(z, d, "mx.@", "AAAA", "2001:db8::25");
    add(z, d, "@", "TXT", "google-site-verification=abc123");
    if (!(s->flags & SKIP_SPF))
        add(z, d, "@", "TXT", "v=spf1 mx ip4:192.0.2.0/24 -all");
    if (!(s->flags & SKIP_DKIM))
        add(z, d, "s1._domainkey.@", "TXT", "v=DKIM1; k=rsa; p=" KEY_RSA2048);
    if (!(s->flags & SKIP_DMARC)) {
        char v[300];
        snprintf(v, sizeof v, "v=DMARC1; p=reject; rua=mailto:dmarc@%s", d);
        add(z, d, "_dmarc.@", "TXT", v);
    }
    if (!(s->flags & SKIP_BOUNCE_MX))
        add(z, d, "bounce.@", "MX", "10 mx.@");
    if (!(s->flags & SKIP_BOUNCE_SPF))
        add(z, d, "bounce.@", "TXT", "v=spf1 mx -all");
    if (!(s->flags & SKIP_STS))
        add(z, d, "_mta-sts.@", "TXT", "v=STSv1; id=20240101T000000");
    if (!(s->flags & SKIP_STS_HOST))
        add(z, d, "mta-sts.@", "A", "192.0.2.80");
    if (!(s->flags & SKIP_TLSRPT)) {
        char v[300];
        snprintf(v, sizeof v, "v=TLSRPTv1; rua=mailto:tls-reports@%s", d);
        add(z, d, "_smtp._tls.@", "TXT", v);
    }
    for (size_t i = 0; i < sizeof s->rrs / sizeof s->rrs[0] && s->rrs[i].name; i++)
        add(z, d, s->rrs[i].name, s->rrs[i].type, s->rrs[i].value);
    return z;
}

static void print_report(const struct doctor_report *r)
{
    for (size_t i = 0; i < r->count; i++)
        print_message("  %-9s %-7s %s\n            fix: %s\n",
                      doctor_check_name(r->findings[i].check),
                      doctor_status_name(r->findings[i].status), r->findings[i].message,
                      r->findings[i].fix ? r->findings[i].fix : "(none)");
}

static bool matches(const struct doctor_finding *f, const struct want *w)
{
    return f->check == w->check && f->status == w->status && strstr(f->message, w->text) &&
           (!w->fix || (f->fix && strstr(f->fix, w->fix)));
}

static void run_scenario(void **state)
{
    const struct scenario *s = *state;
    const char *domain = s->domain ? s->domain : "example.test";
    struct dns_zone *z = build_zone(s, domain);
    struct dns_resolver *dns = dns_zone_resolver_new(z);
    static const char *const default_selectors[] = { "s1" };
    size_t nsel = 0;
    while (nsel < sizeof s->selectors / sizeof s->selectors[0] && s->selectors[nsel])
        nsel++;
    struct doctor_options opt = {
        .domain = domain,
        .selectors = nsel ? s->selectors : (s->flags & NO_SELECTOR) ? NULL : default_selectors,
        .nselectors = nsel ? nsel : (s->flags & NO_SELECTOR) ? 0 : 1,
        .guess_selectors = !(s->flags & NO_GUESS),
        .mail_from = (s->flags & NO_MAIL_FROM) ? NULL : s->mail_from ? s->mail_from : "bounce",
    };
    struct doctor_report r;
    char err[256] = "";
    if (doctor_run(dns, &opt, &r, err, sizeof err) != 0)
        fail_msg("%s: doctor_run failed: %s", s->name, err);
    bool bad = false;
    assert_string_equal(r.domain, domain);
    assert_false(r.dns_unreachable);
    for (size_t k = 0; k < sizeof s->want / sizeof s->want[0] && s->want[k].text; k++) {
        bool found = false;
        for (size_t i = 0; i < r.count && !found; i++)
            found = matches(&r.findings[i], &s->want[k]);
        if (!found) {
            print_message("%s: no %s %s finding with \"%s\"%s%s\n", s->name,
                          doctor_check_name(s->want[k].check),
                          doctor_status_name(s->want[k].status), s->want[k].text,
                          s->want[k].fix ? " and fix with " : "",
                          s->want[k].fix ? s->want[k].fix : "");
            bad = true;
        }
    }
    bool seen[DOCTOR_TLS_RPT + 1] = { false };
    for (size_t i = 0; i < r.count; i++) {
        const struct doctor_finding *f = &r.findings[i];
        seen[f->check] = true;
        if (!f->message[0]) {
            print_message("%s: empty message\n", s->name);
            bad = true;
        }
        if (f->status == DOCTOR_OK)
            continue;
        if (!f->fix || !f->fix[0]) {
            print_message("%s: a %s finding without a fix: %s\n", s->name,
                          doctor_status_name(f->status), f->message);
            bad = true;
        }
        bool wanted = false;
        for (size_t k = 0; k < sizeof s->want / sizeof s->want[0] && s->want[k].text; k++)
            wanted = wanted || matches(f, &s->want[k]);
        if (!wanted) {
            print_message("%s: unexpected %s %s: %s\n", s->name, doctor_check_name(f->check),
                          doctor_status_name(f->status), f->message);
            bad = true;
        }
    }
    for (int c = DOCTOR_MX; c <= DOCTOR_TLS_RPT; c++) {
        if (!seen[c] && !(c == DOCTOR_MAIL_FROM && !opt.mail_from)) {
            print_message("%s: nothing reported for %s\n", s->name, doctor_check_name(c));
            bad = true;
        }
    }
    /* findings come in report order: mx, spf, dkim, dmarc, mail_from, ... */
    for (size_t i = 1; i < r.count; i++)
        if (r.findings[i].check < r.findings[i - 1].check) {
            print_message("%s: findings out of order at %zu\n", s->name, i);
            bad = true;
        }
    if (getenv("DOCTOR_TEST_VERBOSE")) { /* to read every message while writing them */
        print_message("== %s\n", s->name);
        print_report(&r);
    }
    if (bad) {
        print_report(&r);
        fail_msg("scenario '%s' failed", s->name);
    }
    doctor_report_free(&r);
    dns_resolver_free(dns);
    dns_zone_free(z);
}

/* The correct domain: exactly one ok finding per check. */
static void correct_domain_all_ok(void **state)
{
    const struct scenario *s = &scenarios[0];
    struct dns_zone *z = build_zone(s, "example.test");
    struct dns_resolver *dns = dns_zone_resolver_new(z);
    const char *sel[] = { "s1" };
    struct doctor_options opt = { .domain = "Example.TEST.", .selectors = sel, .nselectors = 1,
                                  .mail_from = "bounce" };
    struct doctor_report r;
    char err[256];
    assert_int_equal(doctor_run(dns, &opt, &r, err, sizeof err), 0);
    assert_string_equal(r.domain, "example.test");
    assert_int_equal(r.count, 7);
    for (size_t i = 0; i < r.count; i++) {
        assert_int_equal(r.findings[i].check, (enum doctor_check)i);
        assert_int_equal(r.findings[i].status, DOCTOR_OK);
        assert_null(r.findings[i].fix);
    }
    assert_non_null(strstr(r.findings[0].message, "10 mx.example.test"));
    assert_non_null(strstr(r.findings[1].message, "1 of 10 DNS lookups"));
    assert_non_null(strstr(r.findings[4].message, "aligned with relaxed SPF alignment"));
    assert_true(r.queries > 10);
    doctor_report_free(&r);
    dns_resolver_free(dns);
    dns_zone_free(z);
}

/* Every lookup times out: the report says DNS is unreachable, quickly
 * (after two failures nothing more is asked). */
static void dns_unreachable(void **state)
{
    struct dns_zone *z = dns_zone_new();
    const char *names[] = { "example.test", "_dmarc.example.test", "_mta-sts.example.test",
                            "_smtp._tls.example.test", "s1._domainkey.example.test" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(dns_zone_add_timeout(z, names[i]), 0);
    struct dns_resolver *dns = dns_zone_resolver_new(z);
    struct doctor_options opt = { .domain = "example.test", .guess_selectors = true };
    struct doctor_report r;
    char err[256];
    assert_int_equal(doctor_run(dns, &opt, &r, err, sizeof err), 0);
    assert_true(r.dns_unreachable);
    assert_int_equal(dns_zone_resolver_queries(dns), 2);
    doctor_report_free(&r);
    /* One name timing out is a finding, not an unreachable DNS. */
    struct dns_zone *z2 = dns_zone_new();
    assert_int_equal(dns_zone_add(z2, "example.test", "MX", "10 mx.example.test"), 0);
    assert_int_equal(dns_zone_add_timeout(z2, "_dmarc.example.test"), 0);
    struct dns_resolver *dns2 = dns_zone_resolver_new(z2);
    assert_int_equal(doctor_run(dns2, &opt, &r, err, sizeof err), 0);
    assert_false(r.dns_unreachable);
    bool found = false;
    for (size_t i = 0; i < r.count; i++)
        found = found || (r.findings[i].check == DOCTOR_DMARC &&
                          r.findings[i].status == DOCTOR_ERROR &&
                          strstr(r.findings[i].message, "_dmarc.example.test failed"));
    assert_true(found);
    doctor_report_free(&r);
    dns_resolver_free(dns2);
    dns_zone_free(z2);
    dns_resolver_free(dns);
    dns_zone_free(z);
}

static void bad_input(void **state)
{
    struct dns_zone *z = dns_zone_new();
    struct dns_resolver *dns = dns_zone_resolver_new(z);
    static const char *const bad_domains[] = { "", ".", "example", "exa mple.test", "a..b",
                                              "192.0.2.1", "user@example.test",
                                              "-x.example.test/", "[192.0.2.1]" };
    struct doctor_report r;
    char err[256];
    for (size_t i = 0; i < sizeof bad_domains / sizeof bad_domains[0]; i++) {
        struct doctor_options opt = { .domain = bad_domains[i] };
        err[0] = '\0';
        if (doctor_run(dns, &opt, &r, err, sizeof err) != -1)
            fail_msg("domain '%s' accepted", bad_domains[i]);
        assert_true(err[0] != '\0');
        assert_int_equal(r.count, 0);
    }
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    longname[10] = '.';
    struct doctor_options opt = { .domain = longname };
    assert_int_equal(doctor_run(dns, &opt, &r, err, sizeof err), -1);
    const char *badsel[] = { "bad selector" };
    opt = (struct doctor_options){ .domain = "example.test", .selectors = badsel,
                                   .nselectors = 1 };
    assert_int_equal(doctor_run(dns, &opt, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "selector"));
    opt = (struct doctor_options){ .domain = "example.test", .mail_from = "a b" };
    assert_int_equal(doctor_run(dns, &opt, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "MAIL FROM"));
    assert_int_equal(dns_zone_resolver_queries(dns), 0); /* refused before any DNS */
    char norm[256];
    assert_int_equal(doctor_domain_normalize("Mail.Example.TEST.", norm, sizeof norm, err,
                                             sizeof err), 0);
    assert_string_equal(norm, "mail.example.test");
    assert_string_equal(doctor_check_name(DOCTOR_MAIL_FROM), "mail_from");
    assert_string_equal(doctor_check_name(DOCTOR_MTA_STS), "mta_sts");
    assert_string_equal(doctor_check_name(DOCTOR_TLS_RPT), "tls_rpt");
    assert_string_equal(doctor_status_name(DOCTOR_MISSING), "missing");
    dns_resolver_free(dns);
    dns_zone_free(z);
}

/* One TXT record of one character-string holding any bytes. */
static void add_raw_txt(struct dns_zone *z, const char *name, const char *bytes)
{
    uint8_t rdata[256];
    size_t n = strlen(bytes);
    assert_true(n < 256);
    rdata[0] = (uint8_t)n;
    memcpy(rdata + 1, bytes, n);
    assert_int_equal(dns_zone_add_rdata(z, name, DNS_T_TXT, rdata, n + 1), 0);
}

/* Hostile DNS data: control bytes and invalid UTF-8 never reach messages. */
static void hostile_text(void **state)
{
    struct dns_zone *z = dns_zone_new();
    add_raw_txt(z, "example.test", "v=spf1 ip4:192.0.2.1\x01\xff\xfe -all");
    add_raw_txt(z, "_dmarc.example.test", "v=DMARC1; p=\xc3\x28\x07none");
    struct dns_resolver *dns = dns_zone_resolver_new(z);
    struct doctor_options opt = { .domain = "example.test" };
    struct doctor_report r;
    char err[256];
    assert_int_equal(doctor_run(dns, &opt, &r, err, sizeof err), 0);
    bool spf_error = false;
    for (size_t i = 0; i < r.count; i++) {
        const char *texts[2] = { r.findings[i].message, r.findings[i].fix };
        for (int t = 0; t < 2; t++)
            for (const unsigned char *p = (const unsigned char *)texts[t]; p && *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == 0xff || *p == 0xfe)
                    fail_msg("raw byte 0x%02x in: %s", *p, texts[t]);
        spf_error = spf_error || (r.findings[i].check == DOCTOR_SPF &&
                                  r.findings[i].status == DOCTOR_ERROR);
    }
    assert_true(spf_error);
    doctor_report_free(&r);
    dns_resolver_free(dns);
    dns_zone_free(z);
}

#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

int main(void)
{
    static struct CMUnitTest tests[NSCENARIOS + 4];
    for (size_t i = 0; i < NSCENARIOS; i++)
        tests[i] = (struct CMUnitTest){ scenarios[i].name, run_scenario, NULL, NULL,
                                        (void *)&scenarios[i] };
    tests[NSCENARIOS] = (struct CMUnitTest)cmocka_unit_test(correct_domain_all_ok);
    tests[NSCENARIOS + 1] = (struct CMUnitTest)cmocka_unit_test(dns_unreachable);
    tests[NSCENARIOS + 2] = (struct CMUnitTest)cmocka_unit_test(bad_input);
    tests[NSCENARIOS + 3] = (struct CMUnitTest)cmocka_unit_test(hostile_text);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
