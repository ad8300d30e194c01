/* DKIM benchmark (issue 3, SPEC.md §5): signatures and verifications per
 * second of a 4 KiB message with RSA-2048 and Ed25519, against the limit
 * `openssl speed rsa2048 ed25519` and the peers libopendkim (loaded with
 * dlopen, so the build needs no extra link step) and dkimpy (a python
 * subprocess, bench/dkimpy_peer.py), all measured in this run; and the
 * body hash of a 1 MiB body against `openssl speed -evp sha256`.
 * Measuring time per figure: $SESAME_BENCH_SECONDS (default 2). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/dkim.h"
#include "auth/dkim_internal.h"
#include "auth/dkim_signer.h"
#include "dns/dns_zone.h"
#include "bench_message.h"

static double secs = 2.0;

/* Calls fn until secs have passed; operations per second. */
static double rate(void (*fn)(void *), void *arg)
{
    for (int i = 0; i < 3; i++)   /* warm up */
        fn(arg);
    unsigned long n = 0;
    double start = bench_now(), t;
    do {
        for (int i = 0; i < 8; i++)
            fn(arg);
        n += 8;
        t = bench_now() - start;
    } while (t < secs);
    return (double)n / t;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_dkim: %s\n", what);
    exit(1);
}

/* ---- sesame ---- */

struct sctx {
    struct dkim_signer *signer;
    struct dkim_sign_options opt;
    const char *msg;
    size_t len;
    struct buf out;
    struct dns_resolver *dns;
    struct dkim_keycache *cache;
    char *signed_msg;
    size_t signed_len;
};

static void s_sign(void *arg)
{
    struct sctx *c = arg;
    char err[200];
    buf_reset(&c->out);
    if (dkim_sign_message(c->signer, &c->opt, c->msg, c->len, &c->out, err, sizeof err) != DKIM_OK)
        die(err);
}

static void s_verify(void *arg)
{
    struct sctx *c = arg;
    struct dkim_clock clock = { 1700000100 };
    struct dkim_verify_ctx *v = dkim_verify_begin(c->dns, &clock);
    dkim_verify_set_keycache(v, c->cache);
    struct dkim_results r;
    if (dkim_verify_write(v, c->signed_msg, c->signed_len) != 0 || dkim_verify_finish(v, &r) != 0)
        die("verify failed");
    if (r.count != 1 || r.sigs[0].result != DKIM_PASS)
        die(r.count ? r.sigs[0].reason : "no signature");
    dkim_results_free(&r);
    dkim_verify_free(v);
}

/* ---- libopendkim, through dlopen ----
 * Its header cannot be included next to ours (both define DKIM_CANON_*), so
 * the few types and constants of <opendkim/dkim.h> used are restated. */
typedef struct od_dkim DKIM;
typedef struct od_lib DKIM_LIB;
typedef struct od_siginfo DKIM_SIGINFO;
typedef int DKIM_STAT;
typedef int DKIM_CBSTAT;
typedef int dkim_canon_t;
typedef int dkim_alg_t;
typedef unsigned char *dkim_sigkey_t;
#define OD_STAT_OK 0
#define OD_CBSTAT_CONTINUE 0
#define OD_CANON_RELAXED 1
#define OD_SIGN_RSASHA256 1
#define OD_SIGN_ED25519SHA256 2
#define OD_SIGFLAG_PASSED 0x04
#define OD_SIGBH_MATCH 0

static struct {
    void *h;
    DKIM_LIB *(*init)(void *(*)(void *, size_t), void (*)(void *, void *));
    DKIM *(*sign)(DKIM_LIB *, const unsigned char *, void *, const dkim_sigkey_t,
                  const unsigned char *, const unsigned char *, dkim_canon_t, dkim_canon_t,
                  dkim_alg_t, ssize_t, DKIM_STAT *);
    DKIM *(*verify)(DKIM_LIB *, const unsigned char *, void *, DKIM_STAT *);
    DKIM_STAT (*chunk)(DKIM *, u_char *, size_t);
    DKIM_STAT (*eom)(DKIM *, _Bool *);
    DKIM_STAT (*getsighdr)(DKIM *, u_char *, size_t, size_t);
    DKIM_STAT (*free_)(DKIM *);
    DKIM_SIGINFO *(*getsignature)(DKIM *);
    unsigned int (*sig_getflags)(DKIM_SIGINFO *);
    int (*sig_getbh)(DKIM_SIGINFO *);
    unsigned char *(*sig_getselector)(DKIM_SIGINFO *);
    DKIM_STAT (*set_key_lookup)(DKIM_LIB *, DKIM_CBSTAT (*)(DKIM *, DKIM_SIGINFO *, u_char *,
                                                            size_t));
    DKIM_LIB *lib;
} od;

static char *od_records[2];   /* rsa, ed */

static DKIM_CBSTAT od_lookup(DKIM *d, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
    const char *sel = (const char *)od.sig_getselector(sig);
    const char *rec = strcmp(sel, "ed") == 0 ? od_records[1] : od_records[0];
    snprintf((char *)buf, buflen, "%s", rec);
    return OD_CBSTAT_CONTINUE;
}

static bool od_load(void)
{
    od.h = dlopen("libopendkim.so.11", RTLD_NOW);
    if (!od.h)
        return false;
#define SYM(f, n) if (!(*(void **)&od.f = dlsym(od.h, n))) return false
    SYM(init, "dkim_init");
    SYM(sign, "dkim_sign");
    SYM(verify, "dkim_verify");
    SYM(chunk, "dkim_chunk");
    SYM(eom, "dkim_eom");
    SYM(getsighdr, "dkim_getsighdr");
    SYM(free_, "dkim_free");
    SYM(getsignature, "dkim_getsignature");
    SYM(sig_getflags, "dkim_sig_getflags");
    SYM(sig_getbh, "dkim_sig_getbh");
    SYM(sig_getselector, "dkim_sig_getselector");
    SYM(set_key_lookup, "dkim_set_key_lookup");
    od.lib = od.init(NULL, NULL);
    if (!od.lib)
        return false;
    od.set_key_lookup(od.lib, od_lookup);
    return true;
}

struct octx {
    char *key;            /* PEM, or base64 seed for Ed25519 */
    const char *selector;
    dkim_alg_t alg;
    const char *msg;
    size_t len;
    char *signed_msg;
    size_t signed_len;
    char hdr[4096];
    bool ok;
};

static void o_sign(void *arg)
{
    struct octx *c = arg;
    DKIM_STAT st;
    DKIM *d = od.sign(od.lib, (const unsigned char *)"bench", NULL, (dkim_sigkey_t)c->key,
                      (const unsigned char *)c->selector, (const unsigned char *)"example.test",
                      OD_CANON_RELAXED, OD_CANON_RELAXED, c->alg, -1, &st);
    c->ok = d && od.chunk(d, (u_char *)c->msg, c->len) == OD_STAT_OK &&
            od.chunk(d, NULL, 0) == OD_STAT_OK && od.eom(d, NULL) == OD_STAT_OK &&
            od.getsighdr(d, (u_char *)c->hdr, sizeof c->hdr, strlen("DKIM-Signature: ")) ==
                OD_STAT_OK;
    if (d)
        od.free_(d);
}

static void o_verify(void *arg)
{
    struct octx *c = arg;
    DKIM_STAT st;
    DKIM *d = od.verify(od.lib, (const unsigned char *)"bench", NULL, &st);
    c->ok = false;
    if (d && od.chunk(d, (u_char *)c->signed_msg, c->signed_len) == OD_STAT_OK &&
        od.chunk(d, NULL, 0) == OD_STAT_OK && od.eom(d, NULL) == OD_STAT_OK) {
        DKIM_SIGINFO *s = od.getsignature(d);
        c->ok = s && (od.sig_getflags(s) & OD_SIGFLAG_PASSED) && od.sig_getbh(s) == OD_SIGBH_MATCH;
    }
    if (d)
        od.free_(d);
}

/* ---- limits ---- */

static void openssl_speed(double *rsa_sign, double *rsa_verify, double *ed_sign,
                          double *ed_verify, double *sha256)
{
    char cmd[256];
    int s = secs < 1 ? 1 : (int)secs;
    snprintf(cmd, sizeof cmd, "openssl speed -mr -seconds %d rsa2048 ed25519 2>/dev/null; "
                              "openssl speed -mr -seconds %d -evp sha256 2>/dev/null", s, s);
    FILE *p = popen(cmd, "r");
    if (!p)
        die("cannot run openssl speed");
    char line[512];
    *rsa_sign = *rsa_verify = *ed_sign = *ed_verify = *sha256 = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        /* +F2:i:2048:sign/s:verify/s  +F6:i:253:Ed25519:sign/s:verify/s
         * +F:i:sha256:B/s per block size (16 .. 16384) */
        char *f[16];
        int n = 0;
        for (char *q = line, *t; n < 16 && (t = strsep(&q, ":")); )
            f[n++] = t;
        if (n == 5 && strcmp(f[0], "+F2") == 0 && strcmp(f[2], "2048") == 0) {
            *rsa_sign = strtod(f[3], NULL);
            *rsa_verify = strtod(f[4], NULL);
        } else if (n == 6 && strcmp(f[0], "+F6") == 0 && strcmp(f[3], "Ed25519") == 0) {
            *ed_sign = strtod(f[4], NULL);
            *ed_verify = strtod(f[5], NULL);
        } else if (n >= 4 && strcmp(f[0], "+F") == 0 && strcmp(f[2], "sha256") == 0) {
            *sha256 = strtod(f[n - 1], NULL) / 1e6;   /* the largest block, MB/s */
        }
    }
    pclose(p);
}

static void emit(const char *name, const char *unit, double value, const char *limit_what,
                 double limit, json_t *peers, const char *notes)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "unit", json_string(unit));
    json_object_set_new(o, "value", json_real(value));
    if (limit > 0) {
        json_t *l = json_object();
        json_object_set_new(l, "what", json_string(limit_what));
        json_object_set_new(l, "value", json_real(limit));
        json_object_set_new(o, "limit", l);
    } else {
        json_object_set_new(o, "limit", json_null());
    }
    json_object_set_new(o, "peers", peers ? peers : json_object());
    json_object_set_new(o, "notes", json_string(notes));
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    fflush(stdout);
    free(s);
    json_decref(o);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die("cannot write a temporary file");
}

/* The octets SHA-256 goes over to verify (or sign) the signed message m:
 * the canonical body and the canonical signed header fields. */
static size_t hashed_octets(const char *m, size_t len)
{
    size_t hl, bo, nf = 0;
    mail_split_message(m, len, &hl, &bo);
    struct mail_field f[64];
    mail_header_fields(m, hl, f, 64, &nf, NULL);
    struct dkim_sig *sig = malloc(sizeof *sig);
    char err[200];
    if (!sig || nf == 0 || nf > 64 || !sv_eq_ci_cstr(f[0].name, "DKIM-Signature") ||
        dkim_sig_parse(f[0].raw.p, f[0].raw.len, sig, err, sizeof err) != 0)
        die("cannot read back the signature");
    struct buf sf, scratch;
    buf_init(&sf, 1 << 16);
    buf_init(&scratch, 1 << 20);
    unsigned char d[32];
    struct dkim_body b;
    if (buf_append(&sf, f[0].raw.p, sig->b_off) != 0 ||
        buf_append(&sf, f[0].raw.p + sig->b_off + sig->b_len,
                   f[0].raw.len - sig->b_off - sig->b_len) != 0 ||
        dkim_header_digest(sig->hc, f, nf, sig->names, sig->nnames, sf.data, sf.len, &scratch,
                           d) != 0 ||
        dkim_body_init(&b, sig->bc, -1, NULL) != 0 || dkim_body_update(&b, m + bo, len - bo) != 0 ||
        dkim_body_final(&b, d) != 0)
        die("hashed_octets");
    size_t n = scratch.len + (size_t)b.total;
    dkim_body_free(&b);
    buf_free(&sf);
    buf_free(&scratch);
    free(sig);
    return n;
}

struct hctx {
    enum dkim_canon c;
    const char *body;
    size_t len;
};

static void h_body(void *arg)
{
    struct hctx *h = arg;
    struct dkim_body b;
    unsigned char d[32];
    if (dkim_body_init(&b, h->c, -1, NULL) != 0 || dkim_body_update(&b, h->body, h->len) != 0 ||
        dkim_body_final(&b, d) != 0)
        die("body hash");
    dkim_body_free(&b);
}

int main(void)
{
    const char *e = getenv("SESAME_BENCH_SECONDS");
    if (e && atof(e) > 0)
        secs = atof(e);
    size_t len;
    char *msg = bench_make_message(4096, &len);

    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!rsa || !ed)
        die("keygen");
    char *pems[2];
    EVP_PKEY *keys[2] = { rsa, ed };
    struct dkim_signer *signers[2];
    struct buf recs[2];
    struct dns_zone *zone = dns_zone_new();
    for (int i = 0; i < 2; i++) {
        BIO *b = BIO_new(BIO_s_mem());
        PEM_write_bio_PrivateKey(b, keys[i], NULL, NULL, 0, NULL, NULL);
        char *p;
        long n = BIO_get_mem_data(b, &p);
        pems[i] = strndup(p, (size_t)n);
        BIO_free(b);
        char err[200];
        signers[i] = dkim_signer_from_pem(pems[i], strlen(pems[i]), err, sizeof err);
        if (!signers[i])
            die(err);
        buf_init(&recs[i], 8192);
        if (dkim_signer_record(signers[i], &recs[i]) != 0 ||
            dns_zone_add(zone, i ? "ed._domainkey.example.test" : "rsa._domainkey.example.test",
                         "TXT", recs[i].data) != 0)
            die("zone");
        od_records[i] = recs[i].data;
    }
    struct dns_resolver *dns = dns_zone_resolver_new(zone);
    struct dkim_keycache *cache = dkim_keycache_new(64);

    double lim[5];
    openssl_speed(&lim[0], &lim[1], &lim[2], &lim[3], &lim[4]);

    /* dkimpy, in the background meanwhile? No: one thing at a time, so the
     * figures do not disturb each other. */
    char dir[] = "/tmp/sesame-bench-dkim-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    char path[6][512];
    const char *names[6] = { "msg.eml", "rsa.pem", "rsa.txt", "ed.seed", "ed.txt", "" };
    for (int i = 0; i < 5; i++)
        snprintf(path[i], sizeof path[i], "%s/%s", dir, names[i]);
    write_file(path[0], msg, len);
    write_file(path[1], pems[0], strlen(pems[0]));
    write_file(path[2], recs[0].data, recs[0].len);
    unsigned char seed[32];
    size_t seedlen = 32;
    EVP_PKEY_get_raw_private_key(ed, seed, &seedlen);
    struct buf seed64;
    buf_init(&seed64, 100);
    if (dkim_base64_encode(seed, 32, &seed64) != 0)
        die("oom");
    write_file(path[3], seed64.data, seed64.len);
    write_file(path[4], recs[1].data, recs[1].len);
    double py[4] = { 0, 0, 0, 0 };
    {
        const char *src = getenv("SESAME_BENCH_SOURCE_DIR");
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/dkimpy_peer.py %g %s %s %s %s %s",
                 src ? src : "bench", secs, path[0], path[1], path[2], path[3], path[4]);
        FILE *p = popen(cmd, "r");
        char line[1024] = "";
        if (p && fgets(line, sizeof line, p)) {
            json_t *j = json_loads(line, 0, NULL);
            static const char *k[4] = { "rsa_sign", "rsa_verify", "ed_sign", "ed_verify" };
            for (int i = 0; j && i < 4; i++)
                py[i] = json_real_value(json_object_get(j, k[i]));
            json_decref(j);
        }
        if (p)
            pclose(p);
        if (py[0] == 0)
            fprintf(stderr, "bench_dkim: dkimpy peer did not run (python3-dkim missing?)\n");
    }
    for (int i = 0; i < 5; i++)
        unlink(path[i]);
    rmdir(dir);

    bool have_od = od_load();
    if (!have_od)
        fprintf(stderr, "bench_dkim: libopendkim.so.11 not loadable (apt install libopendkim-dev)\n");

    static const char *tags[2] = { "rsa2048", "ed25519" };
    for (int i = 0; i < 2; i++) {
        struct sctx c = { .signer = signers[i], .msg = msg, .len = len, .dns = dns, .cache = cache };
        c.opt = (struct dkim_sign_options){ .domain = "example.test",
                                            .selector = i ? "ed" : "rsa", .now = 1700000000 };
        buf_init(&c.out, 1 << 20);
        s_sign(&c);
        struct buf sm;
        buf_init(&sm, 1 << 20);
        if (buf_append(&sm, c.out.data, c.out.len) != 0 || buf_append(&sm, msg, len) != 0)
            die("oom");
        c.signed_msg = sm.data;
        c.signed_len = sm.len;
        double sign = rate(s_sign, &c);
        double verify = rate(s_verify, &c);

        json_t *ps = json_object(), *pv = json_object();
        if (have_od) {
            struct octx o = { .selector = i ? "ed" : "rsa", .msg = msg, .len = len,
                              .alg = i ? OD_SIGN_ED25519SHA256 : OD_SIGN_RSASHA256 };
            o.key = pems[i];
            o_sign(&o);
            if (o.ok) {
                struct buf om;
                buf_init(&om, 1 << 20);
                if (buf_printf(&om, "DKIM-Signature: %s\r\n", o.hdr) != 0 ||
                    buf_append(&om, msg, len) != 0)
                    die("oom");
                o.signed_msg = om.data;
                o.signed_len = om.len;
                json_object_set_new(ps, "libopendkim", json_real(rate(o_sign, &o)));
                /* libopendkim verifies its own signature, and ours. */
                o_verify(&o);
                if (o.ok)
                    json_object_set_new(pv, "libopendkim", json_real(rate(o_verify, &o)));
                else
                    fprintf(stderr, "bench_dkim: libopendkim cannot verify %s\n", tags[i]);
                o.signed_msg = c.signed_msg;
                o.signed_len = c.signed_len;
                o_verify(&o);
                if (!o.ok)
                    fprintf(stderr, "bench_dkim: libopendkim rejects sesame's %s signature\n",
                            tags[i]);
                buf_free(&om);
            } else {
                fprintf(stderr, "bench_dkim: libopendkim cannot sign %s\n", tags[i]);
            }
        }
        if (py[2 * i] > 0) {
            json_object_set_new(ps, "dkimpy", json_real(py[2 * i]));
            json_object_set_new(pv, "dkimpy", json_real(py[2 * i + 1]));
        }
        /* The limit is the bare signature operation; a DKIM signature also
         * needs SHA-256 over the message, which no implementation can skip:
         * the notes say what that alone leaves (at the measured sha256 rate). */
        size_t hashed = hashed_octets(c.signed_msg, c.signed_len);
        double hash_s = lim[4] > 0 ? (double)hashed / (lim[4] * 1e6) : 0;
        char notes[512], ceiling[200] = "";
        char name[64], what[64];
        snprintf(name, sizeof name, "dkim_sign_%s_4k", tags[i]);
        snprintf(what, sizeof what, "openssl speed %s sign", tags[i]);
        if (lim[2 * i] > 0 && hash_s > 0)
            snprintf(ceiling, sizeof ceiling, "; the limit plus SHA-256 of the %zu octets hashed "
                     "allows at most %.0f/s (%.2f of the limit)", hashed,
                     1 / (1 / lim[2 * i] + hash_s), 1 / (1 + hash_s * lim[2 * i]));
        snprintf(notes, sizeof notes, "4 KiB message, relaxed/relaxed, default header set; whole "
                 "sign path (split, canonicalize, hash, sign, fold)%s", ceiling);
        emit(name, "msg/s", sign, what, lim[2 * i], ps, notes);
        snprintf(name, sizeof name, "dkim_verify_%s_4k", tags[i]);
        snprintf(what, sizeof what, "openssl speed %s verify", tags[i]);
        ceiling[0] = '\0';
        if (lim[2 * i + 1] > 0 && hash_s > 0)
            snprintf(ceiling, sizeof ceiling, "; the limit plus SHA-256 of the %zu octets hashed "
                     "allows at most %.0f/s (%.2f of the limit)", hashed,
                     1 / (1 / lim[2 * i + 1] + hash_s), 1 / (1 + hash_s * lim[2 * i + 1]));
        snprintf(notes, sizeof notes, "4 KiB message; whole verify path (parse, key lookup in an "
                 "in-memory zone with the shared key cache, as the MX uses it, body and header "
                 "hash, signature check)%s", ceiling);
        emit(name, "msg/s", verify, what, lim[2 * i + 1], pv, notes);
        buf_free(&c.out);
        buf_free(&sm);
    }

    /* Body hash of 1 MiB. */
    size_t blen;
    char *big = bench_make_message(1 << 20, &blen);
    char *body = strstr(big, "\r\n\r\n") + 4;
    struct hctx h = { DKIM_CANON_RELAXED, body, blen - (size_t)(body - big) };
    for (int c = 0; c < 2; c++) {
        h.c = c ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
        double r = rate(h_body, &h) * (double)h.len / 1e6;
        char name[64];
        snprintf(name, sizeof name, "dkim_bodyhash_%s_1m", c ? "simple" : "relaxed");
        emit(name, "MB/s", r, "openssl speed -evp sha256 (16 KiB blocks)", lim[4], NULL,
             "1 MiB text body (72-column lines), canonicalization + SHA-256, one call");
    }
    free(big);
    free(msg);
    buf_free(&seed64);
    for (int i = 0; i < 2; i++) {
        dkim_signer_free(signers[i]);
        buf_free(&recs[i]);
        free(pems[i]);
        EVP_PKEY_free(keys[i]);
    }
    dkim_keycache_free(cache);
    dns_resolver_free(dns);
    dns_zone_free(zone);
    return 0;
}
