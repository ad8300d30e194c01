/* The whole receiving-side check (issue 4, SPEC.md §5): messages per second
 * through auth_check_message (SPF for MAIL FROM, DKIM, the From domain,
 * DMARC, the Authentication-Results field), exactly as the MX calls it, on
 * a 4 KiB message signed with RSA-2048 relaxed/relaxed.
 *
 * Warm DNS cache: every answer comes from an in-memory zone
 * (dns_zone_resolver_new), i.e. what a check costs once the resolver has
 * the records cached; no network. The zone holds
 *   mail.example.test         TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.test -all"
 *   _spf.example.test         TXT "v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/24 -all"
 *   rsa._domainkey.example.test TXT the RSA-2048 key record
 *   _dmarc.example.test       TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
 * The client is 203.0.113.25 and MAIL FROM bounces@mail.example.test, so
 * SPF has to go through the include to pass, and DMARC aligns SPF (relaxed,
 * mail.example.test ~ example.test) and DKIM (d=example.test) with From
 * alice@example.test.
 *
 * auth_check_message is given a dkim_keycache, as the MX keeps one per
 * process: the key record is fetched through DNS for every message, but
 * decoded once.
 *
 * Limit: `openssl speed rsa2048` verify rate (one RSA verify per message).
 * Peer: bench/check_peer.py under /usr/bin/python3, Debian's pyspf
 * (python3-spf), dkimpy (python3-dkim) and a small DMARC step in Python, on
 * the same message, key, address, sender and records, measured in this
 * run. Both sides check their verdict (SPF, DKIM and DMARC pass) before
 * timing. Ours is timed in two halves, before and after the peer, so that
 * drift of the machine's load hits both alike.
 * Measuring time: $SESAME_BENCH_SECONDS per side (default 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/auth_check.h"
#include "auth/dkim.h"
#include "auth/dkim_signer.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "dns/dns_zone.h"
#include "bench_message.h"

#define BENCH_NAME "check_4k_rsa2048_warm_dns"
#define CLIENT_IP "203.0.113.25"
#define SENDER "bounces@mail.example.test"
#define HELO "mail.example.test"
#define AUTHSERV "mx.example.net"
#define SIGN_TIME ((time_t)1700000000)
#define CHECK_TIME ((time_t)1700000100)

static const struct {
    const char *name, *txt;
} records[] = {
    { "mail.example.test", "v=spf1 ip4:192.0.2.0/24 include:_spf.example.test -all" },
    { "_spf.example.test", "v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.0/24 -all" },
    { "_dmarc.example.test", "v=DMARC1; p=reject; rua=mailto:dmarc@example.test" },
};
#define KEY_NAME "rsa._domainkey.example.test"

static double secs = 2.0;

static void die(const char *what)
{
    fprintf(stderr, "bench_check: %s\n", what);
    exit(1);
}

/* ---- ours ---- */

struct cctx {
    struct dns_resolver *dns;
    struct auth_check_input in;
    const char *msg;
    size_t len;
};

/* One check; with verdict_out, the verdict is kept for inspection. */
static void check_once(struct cctx *c, struct auth_verdict *verdict_out)
{
    struct auth_verdict v;
    if (auth_check_message(c->dns, &c->in, c->msg, c->len, &v) != 0)
        die("auth_check_message: out of memory");
    if (verdict_out)
        *verdict_out = v;
    else
        auth_verdict_free(&v);
}

/* Checks for about `seconds`; adds to *n and returns the time taken. */
static double run_ours(struct cctx *c, double seconds, unsigned long *n)
{
    unsigned long k = 0;
    double start = bench_now(), t;
    do {
        for (int i = 0; i < 8; i++)
            check_once(c, NULL);
        k += 8;
        t = bench_now() - start;
    } while (t < seconds);
    *n += k;
    return t;
}

static void expect_pass(struct cctx *c)
{
    struct auth_verdict v;
    check_once(c, &v);
    char why[1024] = "";
    if (v.spf.result != SPF_PASS)
        snprintf(why, sizeof why, "SPF %s (%s)", spf_result_name(v.spf.result), v.spf.problem);
    else if (v.dkim.count != 1 || v.dkim.sigs[0].result != DKIM_PASS)
        snprintf(why, sizeof why, "DKIM %s (%s)",
                 v.dkim.count ? dkim_result_name(v.dkim.sigs[0].result) : "none",
                 v.dkim.count ? v.dkim.sigs[0].reason : "no signature");
    else if (v.dmarc.result != DMARC_PASS || v.dmarc.policy != DMARC_P_REJECT ||
             !v.dmarc.spf_aligned || !v.dmarc.dkim_aligned)
        snprintf(why, sizeof why, "DMARC %s, policy %s, spf_aligned %d, dkim_aligned %d (%s)",
                 dmarc_result_name(v.dmarc.result),
                 dmarc_policy_name(v.dmarc.policy) ? dmarc_policy_name(v.dmarc.policy) : "-",
                 v.dmarc.spf_aligned, v.dmarc.dkim_aligned, v.dmarc.reason);
    else if (strcmp(v.spf.mechanism, "include:_spf.example.test") != 0)
        snprintf(why, sizeof why, "SPF passed on '%s', not through the include",
                 v.spf.mechanism);
    if (why[0]) {
        fprintf(stderr, "bench_check: sesame's verdict is not a pass: %s\n", why);
        exit(1);
    }
    fprintf(stderr, "bench_check: sesame: %s\n", buf_cstr(&v.authres));
    auth_verdict_free(&v);
}

/* ---- limit ---- */

static double openssl_rsa2048_verify(void)
{
    char cmd[128];
    int s = secs < 1 ? 1 : (int)secs;
    snprintf(cmd, sizeof cmd, "openssl speed -mr -seconds %d rsa2048 2>/dev/null", s);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    char line[512];
    double verify = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        /* +F2:i:2048:sign/s:verify/s */
        char *f[8];
        int n = 0;
        for (char *q = line, *t; n < 8 && (t = strsep(&q, ":")); )
            f[n++] = t;
        if (n == 5 && strcmp(f[0], "+F2") == 0 && strcmp(f[2], "2048") == 0)
            verify = strtod(f[4], NULL);
    }
    pclose(p);
    return verify;
}

/* ---- the peer ---- */

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die("cannot write a temporary file");
}

/* Runs bench/check_peer.py; its rate, or 0 when it did not run. */
static double run_peer(const char *msg, size_t len, const char *key_record)
{
    char dir[] = "/tmp/sesame-bench-check-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    char mpath[512], zpath[512];
    snprintf(mpath, sizeof mpath, "%s/msg.eml", dir);
    snprintf(zpath, sizeof zpath, "%s/zone.json", dir);
    write_file(mpath, msg, len);
    json_t *zone = json_object();
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
        json_object_set_new(zone, records[i].name, json_string(records[i].txt));
    json_object_set_new(zone, KEY_NAME, json_string(key_record));
    char *zj = json_dumps(zone, JSON_COMPACT);
    json_decref(zone);
    if (!zj)
        die("oom");
    write_file(zpath, zj, strlen(zj));
    free(zj);

    const char *src = getenv("SESAME_BENCH_SOURCE_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/check_peer.py %g %s %s %s %s %s %s",
             src ? src : "bench", secs, mpath, zpath, CLIENT_IP, SENDER, HELO, AUTHSERV);
    double rate = 0;
    FILE *p = popen(cmd, "r");
    char line[1024] = "";
    if (p && fgets(line, sizeof line, p)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && json_is_true(json_object_get(j, "pass")))
            rate = json_number_value(json_object_get(j, "rate"));
        json_decref(j);
    }
    int st = p ? pclose(p) : -1;
    if (rate <= 0)
        fprintf(stderr, "bench_check: the python peer did not run or did not pass (status %d; "
                        "python3-spf, python3-dkim installed?)\n", st);
    unlink(mpath);
    unlink(zpath);
    rmdir(dir);
    return rate;
}

/* ---- main ---- */

int main(void)
{
    const char *e = getenv("SESAME_BENCH_SECONDS");
    if (e && atof(e) > 0)
        secs = atof(e);

    /* the key, its record and the signed message */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!rsa)
        die("keygen");
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, rsa, NULL, NULL, 0, NULL, NULL);
    char *pemp;
    long pemn = BIO_get_mem_data(bio, &pemp);
    char err[200];
    struct dkim_signer *signer = dkim_signer_from_pem(pemp, (size_t)pemn, err, sizeof err);
    BIO_free(bio);
    EVP_PKEY_free(rsa);
    if (!signer)
        die(err);
    struct buf record;
    buf_init(&record, 8192);
    if (dkim_signer_record(signer, &record) != 0)
        die("key record");

    size_t len;
    char *msg = bench_make_message(4096, &len);
    struct dkim_sign_options opt = { .domain = "example.test", .selector = "rsa",
                                     .header_canon = DKIM_CANON_RELAXED,
                                     .body_canon = DKIM_CANON_RELAXED, .now = SIGN_TIME };
    struct buf sm;
    buf_init(&sm, 1 << 20);
    if (dkim_sign_message(signer, &opt, msg, len, &sm, err, sizeof err) != DKIM_OK)
        die(err);
    if (buf_append(&sm, msg, len) != 0)
        die("oom");

    /* the zone */
    struct dns_zone *zone = dns_zone_new();
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
        if (dns_zone_add(zone, records[i].name, "TXT", records[i].txt) != 0)
            die("zone");
    if (dns_zone_add(zone, KEY_NAME, "TXT", record.data) != 0)
        die("zone");
    struct dns_resolver *dns = dns_zone_resolver_new(zone);
    if (!dns)
        die("resolver");

    struct cctx c = { .dns = dns, .msg = sm.data, .len = sm.len };
    if (spf_ip_parse(CLIENT_IP, &c.in.ip) != 0)
        die("ip");
    c.in.helo = HELO;
    c.in.sender = SENDER;
    c.in.authserv_id = AUTHSERV;
    c.in.now = CHECK_TIME;
    c.in.keycache = dkim_keycache_new(1024);
    if (!c.in.keycache)
        die("keycache");

    expect_pass(&c);
    unsigned long before = dns_zone_resolver_queries(dns);
    check_once(&c, NULL);
    unsigned long queries = dns_zone_resolver_queries(dns) - before;

    double limit = openssl_rsa2048_verify();

    /* ours, half; the peer; ours, the other half */
    unsigned long n = 0, dummy = 0;
    double t = 0;
    run_ours(&c, secs / 10, &dummy);   /* warm-up */
    t += run_ours(&c, secs / 2, &n);
    double peer = run_peer(sm.data, sm.len, record.data);
    t += run_ours(&c, secs / 2, &n);
    double ours = (double)n / t;

    char notes[2048];
    int off = snprintf(notes, sizeof notes,
             "auth_check_message as the MX calls it (SPF mail-from, DKIM verify, From domain, "
             "DMARC, Authentication-Results) on a 4 KiB message (%zu octets once signed) "
             "signed rsa-sha256 2048-bit relaxed/relaxed; warm DNS cache: every answer from "
             "an in-memory zone (%lu queries per message: SPF record, include, DKIM key, "
             "_dmarc), no network; SPF passes through include:_spf.example.test, DMARC p=reject "
             "passes with SPF (relaxed) and DKIM aligned; DKIM key record looked up per message "
             "and decoded once (a dkim_keycache, as the MX keeps); verdicts checked (SPF, DKIM, DMARC pass) "
             "before timing, ~%.1f s per side, one thread, ours timed in two halves around "
             "the peer. sesame / limit = %.2f",
             sm.len, queries, secs, limit > 0 ? ours / limit : 0);
    if (peer > 0)
        snprintf(notes + off, sizeof notes - (size_t)off,
                 "; sesame / peer = %.1f. Peer: /usr/bin/python3, pyspf (fresh spf.query per "
                 "message, DNSLookup from a dict), dkimpy dkim.verify (dnsfunc from the same "
                 "dict), DMARC in Python (From via dkim's header parser + email.utils, "
                 "_dmarc TXT, p=, relaxed alignment on the last two labels, enough for .test) "
                 "and a formatted Authentication-Results string", ours / peer);
    else
        snprintf(notes + off, sizeof notes - (size_t)off, "; the Python peer did not run");

    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(BENCH_NAME));
    json_object_set_new(o, "unit", json_string("msg/s"));
    json_object_set_new(o, "value", json_real(ours));
    if (limit > 0) {
        json_t *l = json_object();
        json_object_set_new(l, "what",
                            json_string("openssl speed rsa2048 verify (one verify per message)"));
        json_object_set_new(l, "value", json_real(limit));
        json_object_set_new(o, "limit", l);
    } else {
        json_object_set_new(o, "limit", json_null());
    }
    json_t *peers = json_object();
    if (peer > 0)
        json_object_set_new(peers, "dkimpy+pyspf+python-dmarc", json_real(peer));
    json_object_set_new(o, "peers", peers);
    json_object_set_new(o, "notes", json_string(notes));
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s)
        die("oom");
    puts(s);
    free(s);
    json_decref(o);

    dns_resolver_free(dns);
    dns_zone_free(zone);
    buf_free(&sm);
    buf_free(&record);
    free(msg);
    dkim_signer_free(signer);
    dkim_keycache_free(c.in.keycache);
    return fflush(stdout) == 0 ? 0 : 1;
}
