// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The guest of bench/dm-replace: reads COM1's LSR (one synchronous ioreq to
 * ferry-dm) in a loop and times each read with the TSC, while the bench
 * replaces ferry-dm again and again.  It keeps the count, the sum and the
 * TOP_N longest reads (each replace leaves one long one: the pause).  A
 * byte on COM1's input (LSR bit 0) ends it; it prints
 *   "reads N cycles S top T1 T2 ..." (decimal, longest first)
 * on ferry-hv's debug console (0xe9, not an ioreq), then one line
 *   "long START CYCLES" per read longer than LONG_CYCLES (the first LONG_N;
 *   START its TSC), and exits 0.  A read of all ones prints a FAIL line and
 * exits 1.  "waiting ... tsc T" first: it runs, and its TSC was T then (the
 * bench places the long reads on its own clock with it).
 */
#include <stdbool.h>
#include <stdint.h>

#define COM1        0x3f8
#define DEBUG_CON   0xe9
#define TOP_N       64
#define LONG_N      2048
#define LONG_CYCLES 1000000     /* 0.5 ms at 2 GHz: far above a round trip */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static void puts_(const char *s)
{
    while (*s)
        outb(DEBUG_CON, (uint8_t)*s++);
}

static void putu(uint64_t v)
{
    char b[24];
    int i = 0;

    do {
        b[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        outb(DEBUG_CON, (uint8_t)b[--i]);
}

int guest_main(void);

int guest_main(void)
{
    static uint64_t top[TOP_N];     /* longest first */
    static uint64_t long_at[LONG_N], long_d[LONG_N];
    unsigned nlong = 0;
    uint64_t n = 0, sum = 0;

    puts_("waiting: reading COM1's LSR tsc ");
    putu(rdtsc());
    puts_("\n");
    for (;;) {
        uint64_t t0 = rdtsc();
        uint8_t lsr = inb(COM1 + 5);
        uint64_t d = rdtsc() - t0;
        if (lsr == 0xff) {
            puts_("FAIL LSR read all ones after ");
            putu(n);
            puts_(" reads\n");
            return 1;
        }
        if (lsr & 1)
            break;
        n++;
        sum += d;
        if (d > LONG_CYCLES && nlong < LONG_N) {
            long_at[nlong] = t0;
            long_d[nlong++] = d;
        }
        if (d > top[TOP_N - 1]) {
            int i = TOP_N - 1;
            for (; i > 0 && top[i - 1] < d; i--)
                top[i] = top[i - 1];
            top[i] = d;
        }
    }
    puts_("reads ");
    putu(n);
    puts_(" cycles ");
    putu(sum);
    puts_(" top");
    for (int i = 0; i < TOP_N; i++) {
        puts_(" ");
        putu(top[i]);
    }
    puts_("\n");
    for (unsigned i = 0; i < nlong; i++) {
        puts_("long ");
        putu(long_at[i]);
        puts_(" ");
        putu(long_d[i]);
        puts_("\n");
    }
    return 0;
}
