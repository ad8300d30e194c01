/* Bounded decompression of untrusted archives through zlib: a gzip file
 * (RFC 1952; concatenated members too) and one member of a zip archive
 * (PKWARE APPNOTE: stored or deflate), for DMARC aggregate reports and
 * anything else that arrives compressed.
 *
 * Output never exceeds the caller's cap: inflating stops at cap + 1 bytes
 * and says so; sizes declared in the input are checked but never used to
 * allocate. The zip reader walks the central directory with every offset
 * and length checked against the input, and refuses what it does not
 * handle: encryption, zip64, archives split over several disks, methods
 * other than stored (0) and deflate (8). CRC-32 is checked.
 *
 * It does not write files, follow member paths or read more than one
 * member. No I/O. */
#ifndef SESAME_UTIL_ZIP_READ_H
#define SESAME_UTIL_ZIP_READ_H
#include <stdbool.h>
#include <stddef.h>

/* Whether data starts like a gzip file (1f 8b) or a zip archive (PK 3 4,
 * or PK 5 6 for an empty one). */
bool gzip_magic(const unsigned char *data, size_t len);
bool zip_magic(const unsigned char *data, size_t len);

/* Inflates a gzip file. Returns 0 with *out (malloc'd, NUL-terminated for
 * convenience, *outlen bytes before the NUL) or -1 with err ("decompressed
 * size exceeds 32 MiB", "the gzip data is truncated", ...). Data after the
 * last member that is not another member is ignored, as gzip(1) does. */
__attribute__((warn_unused_result))
int gzip_inflate(const unsigned char *data, size_t len, size_t cap, unsigned char **out,
                 size_t *outlen, char *err, size_t errlen);

/* The first member of a zip archive whose name ends with suffix
 * (case-insensitive; directories skipped), decompressed like gzip_inflate.
 * Its name is copied into name (cut to namelen - 1) when name is not NULL.
 * At most max_members central directory entries are looked at. */
__attribute__((warn_unused_result))
int zip_extract(const unsigned char *data, size_t len, const char *suffix, size_t max_members,
                size_t cap, unsigned char **out, size_t *outlen, char *name, size_t namelen,
                char *err, size_t errlen);

#endif
