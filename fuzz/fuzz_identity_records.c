/* libFuzzer target: identity_records_build() with every DNS answer taken
 * from the input, through a fake resolver, then the JSON and the overlay of
 * that JSON onto a list built without DNS. Checks invariants, not just
 * crashes: every record is checked, values are printable ASCII, reasons
 * valid UTF-8 without control characters,
 * the JSON has one entry per record, and the overlay gives back the states,
 * reasons and (SPF, DMARC) values seen.
 *
 * Input: one flags byte (bit 0: a MAIL FROM domain; bit 1: no report
 * address; bit 2: the second key is GRACE rather than PENDING; bit 3: the
 * domain is mail.example.test, below its organizational domain), then one
 * answer per query, in the order the queries come:
 *   status byte: % 5 → OK, NXDOMAIN, NODATA, TEMPFAIL, OK
 *   OK only: count byte (% 4 + 1 records), then per record a 2-byte
 *   big-endian length (cut to what is left); with its top bit set the
 *   bytes are text the harness encodes (TXT: 255-octet strings; MX:
 *   preference 10 and the text as a name), otherwise raw rdata.
 * An exhausted input answers NXDOMAIN. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_rdata.h"
#include "service/identity_records.h"
#include "store/store.h"
#include "util/utf8.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAX_RRS 4

struct fake {
    struct dns_resolver base;
    const uint8_t *p;
    size_t left;
};

struct held {                 /* one answer's memory, freed on release */
    struct dns_rr rrs[MAX_RRS];
    uint8_t *data[MAX_RRS];
};

static void release(struct dns_answer *a)
{
    struct held *h = a->priv;
    for (size_t i = 0; h && i < MAX_RRS; i++)
        free(h->data[i]);
    free(h);
}

static int take(struct fake *f)
{
    if (!f->left)
        return -1;
    f->left--;
    return *f->p++;
}

/* Text → rdata of the asked type; raw bytes otherwise. */
static uint8_t *encode(uint16_t type, const uint8_t *s, size_t n, bool text, size_t *len)
{
    uint8_t *out = malloc(n + n / 255 + 300);
    if (!out)
        return NULL;
    if (!text) {
        if (n)
            memcpy(out, s, n);
        *len = n;
    } else if (type == DNS_T_MX) {
        char name[300];
        size_t k = n < sizeof name - 1 ? n : sizeof name - 1;
        memcpy(name, s, k);
        name[k] = '\0';
        out[0] = 0;
        out[1] = 10;
        int w = memchr(name, '\0', k) ? -1 : dns_wire_name(name, out + 2, 298);
        if (w < 0) {
            out[2] = 0; /* the root: a null MX */
            w = 1;
        }
        *len = 2 + (size_t)w;
    } else {
        size_t o = 0, i = 0;
        do {
            size_t c = n - i > 255 ? 255 : n - i;
            out[o++] = (uint8_t)c;
            memcpy(out + o, s + i, c);
            o += c;
            i += c;
        } while (i < n);
        *len = o;
    }
    return out;
}

static void fake_query(struct dns_resolver *r, const char *name, uint16_t type,
                       struct dns_answer *out)
{
    struct fake *f = (struct fake *)r;
    (void)name;
    memset(out, 0, sizeof *out);
    int s = take(f);
    static const enum dns_status map[] = { DNS_OK, DNS_NXDOMAIN, DNS_NODATA, DNS_TEMPFAIL,
                                           DNS_OK };
    out->status = s < 0 ? DNS_NXDOMAIN : map[s % 5];
    if (out->status != DNS_OK)
        return;
    int c = take(f);
    size_t count = c < 0 ? 1 : (size_t)(c % MAX_RRS) + 1;
    struct held *h = calloc(1, sizeof *h);
    if (!h) {
        out->status = DNS_TEMPFAIL;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        int hi = take(f), lo = take(f);
        if (hi < 0 || lo < 0) {
            hi = 0;
            lo = 0;
        }
        bool text = hi & 0x80;
        size_t n = ((size_t)(hi & 0x7f) << 8) | (size_t)lo;
        if (n > f->left)
            n = f->left;
        size_t len = 0;
        h->data[i] = encode(type, f->p, n, text, &len);
        f->p += n;
        f->left -= n;
        h->rrs[i].data = h->data[i];
        h->rrs[i].len = h->data[i] ? len : 0;
    }
    out->count = count;
    out->rrs = h->rrs;
    out->release = release;
    out->priv = h;
}

static void fake_destroy(struct dns_resolver *r)
{
    (void)r;
}

static const struct dns_resolver_ops fake_ops = { fake_query, fake_destroy };

/* Valid UTF-8 without control characters (reasons: our own text holds "§"). */
static bool text_str(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap || !utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool printable_str(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

#define ED_REC "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define ED2_REC "v=DKIM1; k=ed25519; p=PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    struct fake f = { { &fake_ops }, data + 1, size - 1 };
    const struct idrec_key keys[] = {
        { "ed", ED_REC, STORE_KEY_ACTIVE, 0 },
        { "next", ED2_REC, (flags & 4) ? STORE_KEY_GRACE : STORE_KEY_PENDING, 1700000000 },
        { "old", ED2_REC, STORE_KEY_RETIRED, 1600000000 },
    };
    struct idrec_input in = {
        .domain = (flags & 8) ? "mail.example.test" : "example.test", .token = "tok",
        .mail_from_domain = (flags & 1) ? "bounce.example.test" : NULL,
        .mx_host = "mx.sesame.test", .spf_terms = "a:mx.sesame.test ip4:192.0.2.1",
        .report_address = (flags & 2) ? NULL : "dmarc@reports.sesame.test",
        .keys = keys, .nkeys = 3,
    };
    struct idrec_list checked, fresh;
    if (identity_records_build(&in, &f.base, &checked) != 0)
        return 0;
    for (size_t i = 0; i < checked.n; i++) {
        const struct idrec *r = &checked.v[i];
        CHECK(r->state != IDREC_UNCHECKED);
        CHECK(printable_str(r->value, sizeof r->value));
        CHECK(text_str(r->reason, sizeof r->reason));
        CHECK(printable_str(r->name, sizeof r->name));
        CHECK(r->state != IDREC_OK || r->purpose != IDREC_DKIM || strcmp(r->value, ED_REC) == 0 ||
              strcmp(r->value, ED2_REC) == 0);
    }
    json_t *j = identity_records_json(&checked);
    if (j) {
        CHECK(json_array_size(j) == checked.n);
        if (identity_records_build(&in, NULL, &fresh) == 0) {
            identity_records_overlay(&fresh, j);
            for (size_t i = 0; i < fresh.n; i++) {
                const struct idrec *r = &fresh.v[i];
                if (r->state == IDREC_REMOVE)
                    continue;
                const struct idrec *c = NULL;
                for (size_t k = 0; k < checked.n && !c; k++)
                    if (checked.v[k].purpose == r->purpose && strcmp(checked.v[k].name, r->name) == 0)
                        c = &checked.v[k];
                CHECK(c);
                CHECK(r->state == c->state);
                CHECK(strcmp(r->reason, c->reason) == 0);
                if (r->purpose == IDREC_SPF || r->purpose == IDREC_DMARC ||
                    r->purpose == IDREC_MAIL_FROM_SPF)
                    CHECK(strcmp(r->value, c->value) == 0);
            }
            identity_records_free(&fresh);
        }
        json_decref(j);
    }
    identity_records_free(&checked);
    return 0;
}
