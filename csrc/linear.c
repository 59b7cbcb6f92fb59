/* linear.c - linear regression by full-batch gradient descent (article 000),
 * the whole loop in one C call; float32 and float64 from linear_impl.h. */
#include <string.h>

#include "fastopt.h"

#define T float
#define S f32
#include "linear_impl.h"
#undef T
#undef S

#define T double
#define S f64
#include "linear_impl.h"
#undef T
#undef S
