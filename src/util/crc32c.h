/*
 * crc32c.h - CRC-32C (Castagnoli), as PostgreSQL's pg_control and walship's
 * object trailer use it.  Uses the SSE4.2 instruction when the CPU has it.
 */
#ifndef WALSHIP_UTIL_CRC32C_H
#define WALSHIP_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT 0xFFFFFFFFu

/* Continue a running CRC (start with CRC32C_INIT). */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);
/* Final value of a running CRC. */
static inline uint32_t crc32c_final(uint32_t crc)
{
	return crc ^ 0xFFFFFFFFu;
}
/* One-shot. */
uint32_t crc32c(const void *data, size_t len);

#endif
