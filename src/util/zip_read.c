/* Bounded gzip and zip reading through zlib; see zip_read.h. The zip
 * structures (APPNOTE.TXT §4.3) are read with explicit little-endian loads
 * at offsets checked against the input; inflating writes into a buffer
 * that doubles up to cap + 1 bytes, so an archive that lies about its
 * sizes, or a bomb, costs at most cap + 1 bytes of memory. No I/O. */
#include "util/zip_read.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define ZIP_LFH_SIG  0x04034b50u  /* local file header */
#define ZIP_CDH_SIG  0x02014b50u  /* central directory file header */
#define ZIP_EOCD_SIG 0x06054b50u  /* end of central directory */
#define ZIP64_LOC_SIG 0x07064b50u /* zip64 end of central directory locator */
#define ZIP_LFH_LEN  30
#define ZIP_CDH_LEN  46
#define ZIP_EOCD_LEN 22
#define ZIP_MAX_COMMENT 65535
#define ZIP_FLAG_ENCRYPTED 0x0001u
#define ZIP_FLAG_STRONG    0x0040u
#define ZIP_METHOD_STORED  0
#define ZIP_METHOD_DEFLATE 8
#define ZIP_METHOD_AES     99
#define ZIP64_EXTRA_ID     0x0001u
#define INFLATE_FIRST_ALLOC (64u * 1024)
#define INFLATE_CHUNK_IN    (1u << 30) /* fed to zlib's 32-bit avail_in at a time */

static int fail(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -1;
}

static int fail_cap(char *err, size_t errlen, size_t cap)
{
    if (err && errlen) {
        if (cap % (1024 * 1024) == 0)
            snprintf(err, errlen, "decompressed size exceeds %zu MiB", cap / (1024 * 1024));
        else
            snprintf(err, errlen, "decompressed size exceeds %zu bytes", cap);
    }
    return -1;
}

bool gzip_magic(const unsigned char *data, size_t len)
{
    return len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

bool zip_magic(const unsigned char *data, size_t len)
{
    return len >= 4 && data[0] == 'P' && data[1] == 'K' &&
           ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Output of an inflate: grows by doubling, never past limit (cap + 1). */
struct outbuf {
    unsigned char *p;
    size_t len, alloc, limit;
};

/* Room for at least one more byte; -1 when limit is reached or memory ran out
 * (*full tells which). */
static int outbuf_room(struct outbuf *o, bool *full)
{
    *full = false;
    if (o->len < o->alloc)
        return 0;
    if (o->alloc >= o->limit) {
        *full = true;
        return -1;
    }
    size_t n = o->alloc ? o->alloc * 2 : INFLATE_FIRST_ALLOC;
    if (n > o->limit || n < o->alloc)
        n = o->limit;
    unsigned char *q = realloc(o->p, n + 1); /* + 1: the NUL handed back */
    if (!q)
        return -1;
    o->p = q;
    o->alloc = n;
    return 0;
}

/* Runs zs (initialised, input: the caller's in and inlen)
 * until the end of one stream. Returns 0 at Z_STREAM_END, -1 with err. */
static int inflate_stream(z_stream *zs, const unsigned char **in, size_t *inlen,
                          struct outbuf *o, size_t cap, const char *what, char *err,
                          size_t errlen)
{
    char msg[128];
    for (;;) {
        bool full;
        if (outbuf_room(o, &full) != 0)
            return full ? fail_cap(err, errlen, cap) : fail(err, errlen, "out of memory");
        if (zs->avail_in == 0 && *inlen > 0) {
            size_t n = *inlen < INFLATE_CHUNK_IN ? *inlen : INFLATE_CHUNK_IN;
            zs->next_in = (unsigned char *)*in; /* zlib does not write it */
            zs->avail_in = (uInt)n;
            *in += n;
            *inlen -= n;
        }
        size_t room = o->alloc - o->len;
        if (room > UINT_MAX)
            room = UINT_MAX;
        zs->next_out = o->p + o->len;
        zs->avail_out = (uInt)room;
        uInt before_in = zs->avail_in;
        int rc = inflate(zs, Z_NO_FLUSH);
        size_t produced = room - zs->avail_out;
        o->len += produced;
        if (o->len > cap)
            return fail_cap(err, errlen, cap);
        if (rc == Z_STREAM_END)
            return 0;
        if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR) {
            snprintf(msg, sizeof msg, "the %s data is corrupt (%s)", what,
                     zs->msg ? zs->msg : "bad data");
            return fail(err, errlen, msg);
        }
        if (rc == Z_MEM_ERROR)
            return fail(err, errlen, "out of memory");
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return fail(err, errlen, "zlib failed");
        /* No progress with no input left: the stream stops short. */
        if (produced == 0 && zs->avail_in == 0 && *inlen == 0 && before_in == 0) {
            snprintf(msg, sizeof msg, "the %s data is truncated", what);
            return fail(err, errlen, msg);
        }
    }
}

int gzip_inflate(const unsigned char *data, size_t len, size_t cap, unsigned char **out,
                 size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (!gzip_magic(data, len))
        return fail(err, errlen, "not gzip data");
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) /* 32: a gzip (or zlib) header */
        return fail(err, errlen, "out of memory");
    struct outbuf o = { .limit = cap + 1 };
    const unsigned char *in = data;
    size_t inlen = len;
    int rc;
    for (;;) {
        rc = inflate_stream(&zs, &in, &inlen, &o, cap, "gzip", err, errlen);
        if (rc != 0)
            break;
        /* Another member follows (gzip files may be concatenated)? */
        const unsigned char *rest = zs.avail_in ? zs.next_in : in;
        size_t restlen = zs.avail_in ? zs.avail_in + inlen : inlen;
        if (!gzip_magic(rest, restlen))
            break;
        if (inflateReset(&zs) != Z_OK) {
            rc = fail(err, errlen, "zlib failed");
            break;
        }
    }
    inflateEnd(&zs);
    if (rc != 0) {
        free(o.p);
        return -1;
    }
    if (!o.p && !(o.p = malloc(1))) /* an empty member */
        return fail(err, errlen, "out of memory");
    o.p[o.len] = '\0';
    *out = o.p;
    *outlen = o.len;
    return 0;
}

/* The end of central directory record: the last signature from which a
 * whole record (and its comment) fits. Returns its offset or -1. */
static long find_eocd(const unsigned char *data, size_t len)
{
    if (len < ZIP_EOCD_LEN)
        return -1;
    size_t lowest = len - ZIP_EOCD_LEN > ZIP_MAX_COMMENT ? len - ZIP_EOCD_LEN - ZIP_MAX_COMMENT
                                                         : 0;
    for (size_t pos = len - ZIP_EOCD_LEN + 1; pos-- > lowest;) {
        if (le32(data + pos) == ZIP_EOCD_SIG &&
            le16(data + pos + 20) <= len - pos - ZIP_EOCD_LEN)
            return (long)pos;
    }
    return -1;
}

static bool has_zip64_extra(const unsigned char *extra, size_t n)
{
    size_t i = 0;
    while (n - i >= 4) {
        uint32_t id = le16(extra + i), sz = le16(extra + i + 2);
        if (id == ZIP64_EXTRA_ID)
            return true;
        if (sz > n - i - 4)
            break;
        i += 4 + sz;
    }
    return false;
}

static bool ends_with_ci(const unsigned char *name, size_t n, const char *suffix)
{
    size_t s = strlen(suffix);
    return n >= s && strncasecmp((const char *)name + n - s, suffix, s) == 0;
}

struct zip_member {
    uint32_t flags, method, crc, csize, usize, offset;
    const unsigned char *name;
    size_t namelen;
};

/* Finds the member in the central directory [cd, cd + cdsize). 1 found,
 * 0 none, -1 error. */
static int find_member(const unsigned char *data, size_t cd, size_t cdsize, size_t entries,
                       const char *suffix, struct zip_member *m, char *err, size_t errlen)
{
    size_t pos = cd, end = cd + cdsize;
    for (size_t i = 0; i < entries; i++) {
        if (end - pos < ZIP_CDH_LEN || le32(data + pos) != ZIP_CDH_SIG)
            return fail(err, errlen, "the zip central directory is damaged");
        const unsigned char *h = data + pos;
        size_t n = le16(h + 28), x = le16(h + 30), c = le16(h + 32);
        if (n + x + c > end - pos - ZIP_CDH_LEN)
            return fail(err, errlen, "the zip central directory is damaged");
        const unsigned char *name = h + ZIP_CDH_LEN;
        pos += ZIP_CDH_LEN + n + x + c;
        if (n == 0 || name[n - 1] == '/' || !ends_with_ci(name, n, suffix))
            continue;
        if (le16(h + 34) != 0)
            return fail(err, errlen, "zip archives split over several disks are not supported");
        m->flags = le16(h + 8);
        m->method = le16(h + 10);
        m->crc = le32(h + 16);
        m->csize = le32(h + 20);
        m->usize = le32(h + 24);
        m->offset = le32(h + 42);
        m->name = name;
        m->namelen = n;
        if (m->csize == UINT32_MAX || m->usize == UINT32_MAX || m->offset == UINT32_MAX ||
            has_zip64_extra(name + n, x))
            return fail(err, errlen, "zip64 archives are not supported");
        return 1;
    }
    return 0;
}

static int zip_inflate_raw(const unsigned char *in, size_t inlen, size_t cap,
                           struct outbuf *o, char *err, size_t errlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK) /* raw deflate, no header */
        return fail(err, errlen, "out of memory");
    int rc = inflate_stream(&zs, &in, &inlen, o, cap, "zip member's", err, errlen);
    inflateEnd(&zs);
    return rc;
}

int zip_extract(const unsigned char *data, size_t len, const char *suffix, size_t max_members,
                size_t cap, unsigned char **out, size_t *outlen, char *name, size_t namelen,
                char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    if (name && namelen)
        name[0] = '\0';
    if (!zip_magic(data, len))
        return fail(err, errlen, "not a zip archive");
    long e = find_eocd(data, len);
    if (e < 0)
        return fail(err, errlen, "the zip archive is truncated or damaged (no end of "
                                 "central directory)");
    const unsigned char *eocd = data + e;
    if (e >= 20 && le32(eocd - 20) == ZIP64_LOC_SIG)
        return fail(err, errlen, "zip64 archives are not supported");
    uint32_t disk = le16(eocd + 4), cd_disk = le16(eocd + 6), here = le16(eocd + 8),
             total = le16(eocd + 10), cdsize = le32(eocd + 12), cdoff = le32(eocd + 16);
    if (here == 0xffff || total == 0xffff || cdsize == UINT32_MAX || cdoff == UINT32_MAX)
        return fail(err, errlen, "zip64 archives are not supported");
    if (disk != 0 || cd_disk != 0 || here != total)
        return fail(err, errlen, "zip archives split over several disks are not supported");
    if ((size_t)cdoff > (size_t)e || (size_t)cdsize > (size_t)e - cdoff)
        return fail(err, errlen, "the zip archive is truncated or damaged (central directory "
                                 "out of bounds)");
    if (total > max_members)
        total = (uint32_t)max_members;

    struct zip_member m;
    int found = find_member(data, cdoff, cdsize, total, suffix, &m, err, errlen);
    if (found < 0)
        return -1;
    if (found == 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "the zip archive has no %s file", suffix);
        return fail(err, errlen, msg);
    }
    if (name && namelen) {
        size_t n = m.namelen < namelen - 1 ? m.namelen : namelen - 1;
        memcpy(name, m.name, n);
        name[n] = '\0';
    }
    if ((m.flags & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG)) || m.method == ZIP_METHOD_AES)
        return fail(err, errlen, "the zip member is encrypted");
    if (m.method != ZIP_METHOD_STORED && m.method != ZIP_METHOD_DEFLATE) {
        char msg[96];
        snprintf(msg, sizeof msg, "zip compression method %u is not supported "
                                  "(only stored and deflate)", (unsigned)m.method);
        return fail(err, errlen, msg);
    }
    if (m.usize > cap)
        return fail_cap(err, errlen, cap);

    /* The local header: its own name and extra lengths place the data,
     * which must end before the central directory. */
    size_t lfh = m.offset;
    if (lfh > cdoff || cdoff - lfh < ZIP_LFH_LEN || le32(data + lfh) != ZIP_LFH_SIG)
        return fail(err, errlen, "the zip archive is damaged (bad local header)");
    if (le16(data + lfh + 6) & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG))
        return fail(err, errlen, "the zip member is encrypted");
    size_t start = lfh + ZIP_LFH_LEN + le16(data + lfh + 26) + le16(data + lfh + 28);
    if (start > cdoff || m.csize > cdoff - start)
        return fail(err, errlen, "the zip archive is truncated or damaged (member data out "
                                 "of bounds)");

    struct outbuf o = { .limit = cap + 1 };
    if (m.method == ZIP_METHOD_STORED) {
        if (m.csize != m.usize)
            return fail(err, errlen, "the zip archive is damaged (stored member sizes differ)");
        if (!(o.p = malloc((size_t)m.usize + 1)))
            return fail(err, errlen, "out of memory");
        if (m.usize)
            memcpy(o.p, data + start, m.usize);
        o.len = m.usize;
    } else if (zip_inflate_raw(data + start, m.csize, cap, &o, err, errlen) != 0) {
        free(o.p);
        return -1;
    }
    if (!o.p && !(o.p = malloc(1)))
        return fail(err, errlen, "out of memory");
    if (o.len != m.usize || crc32_z(0L, o.p, o.len) != m.crc) {
        free(o.p);
        return fail(err, errlen, "the zip member is corrupt (size or CRC-32 mismatch)");
    }
    o.p[o.len] = '\0';
    *out = o.p;
    *outlen = o.len;
    return 0;
}
