/*
 * Unicode Normalization Form C over UTF-8, no heap (tables in
 * unicode_tables.c, generated from the Unicode Character Database).
 */
#ifndef MF_UNICODE_NFC_H
#define MF_UNICODE_NFC_H

#include <stddef.h>
#include <stdint.h>

/* 1 when s[0..n) is certainly in NFC already (the quick check of UAX #15:
 * every character NFC_QC=Yes, combining classes in order), else 0. */
int mf_unicode_nfc_quick(const uint8_t *s, size_t n);

/* Writes the NFC of s[0..n) to out (at most cap bytes) and returns its
 * length, or (size_t)-1 when cap is too small; out == NULL only measures.
 * Bytes that are not valid UTF-8 are copied unchanged. The output is at most
 * 3 * n bytes. A run of more than MF_NFC_MAX_RUN combining characters after
 * one starter is normalized in pieces (not canonical; stream-safe text,
 * UAX #15 section 13, never has more than 30). */
#define MF_NFC_MAX_RUN 64
size_t mf_unicode_nfc(const uint8_t *s, size_t n, uint8_t *out, size_t cap);

/* 1 when nothing before code point cp composes with it or with what
 * follows it (NFC_QC=Yes and combining class 0): NFC may be cut before it. */
int mf_unicode_nfc_boundary(uint32_t cp);

#endif
