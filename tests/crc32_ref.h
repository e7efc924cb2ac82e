/* CRC-32/IEEE straight from its definition, one bit at a time: the
 * reference the table and folding implementations are tested against
 * (tests/test_image.c on the host, tests/firmware/test_kernels.c in QEMU). */
#ifndef MF_TESTS_CRC32_REF_H
#define MF_TESTS_CRC32_REF_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc32_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

#endif
