/* Minimal console formatting on top of board_write(): no printf, no heap. */
#include "board.h"

#include <string.h>

void con_puts(const char *s) { board_write(s, strlen(s)); }

void con_putu(uint64_t v)
{
    char b[24];
    int i = (int)sizeof b;
    do {
        b[--i] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    board_write(b + i, sizeof b - (size_t)i);
}

void con_puti(int64_t v)
{
    if (v < 0) {
        board_write("-", 1);
        con_putu((uint64_t)(-(v + 1)) + 1);
    } else {
        con_putu((uint64_t)v);
    }
}

void con_putf(double v, int decimals)
{
    if (v != v) {
        con_puts("nan");
        return;
    }
    if (v < 0) {
        board_write("-", 1);
        v = -v;
    }
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++) scale *= 10;
    uint64_t x = (uint64_t)(v * (double)scale + 0.5);
    con_putu(x / scale);
    if (decimals > 0) {
        char b[20];
        uint64_t f = x % scale;
        for (int i = decimals - 1; i >= 0; i--) {
            b[i] = (char)('0' + (int)(f % 10));
            f /= 10;
        }
        board_write(".", 1);
        board_write(b, (size_t)decimals);
    }
}

void con_puthex(uint32_t v)
{
    char b[10] = {'0', 'x'};
    for (int i = 0; i < 8; i++) b[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
    board_write(b, 10);
}
