// Private to the C kernels (not in include/, so Swift does not see it).
#pragma once
#include <stddef.h>

// Rows per part when `rows` output rows are split into `parts` contiguous blocks for the thread pool: whole multiples
// of 4, because the GEMV kernels multiply four rows per step and a block's tail should not fall mid-step.
static inline size_t tc_row_block(size_t rows, int parts) {
    size_t block = (rows + (size_t)parts - 1) / (size_t)parts;
    return (block + 3) / 4 * 4;
}
