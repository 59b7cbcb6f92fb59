/*
 * binding.h - what the binding files share: CPython and NumPy, and the
 * argument checks every binding runs before it touches an array.
 *
 * Only the binding files (bind_*.c, module.c) include this header; the kernels
 * (fastopt.h and the *_impl.h templates) never see Python.h.  module.c imports
 * NumPy's C API; the other files reach it through PY_ARRAY_UNIQUE_SYMBOL.
 */
#ifndef FASTOPT_BINDING_H
#define FASTOPT_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef NPY_NO_DEPRECATED_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#endif
#define PY_ARRAY_UNIQUE_SYMBOL fastopt_ARRAY_API
#ifndef FO_BINDING_MODULE
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "fastopt.h"

/* ---- bind_checks.c: argument checks, each naming the argument it refuses ---- */

/* numpy.shares_memory, for strided overlap (set by module init) */
extern PyObject *np_shares_memory;

/* FO_F32 / FO_F64 for NPY_FLOAT32 / NPY_FLOAT64, else -1 */
int dtype_code(int typenum);
/* an array exactly of `typenum`, C-contiguous, aligned, native, writeable when
 * `writable`, with `size` elements (any when size < 0); borrowed, or NULL with
 * TypeError/ValueError naming `name` */
PyArrayObject *exact_array(PyObject *o, const char *name, int typenum, int writable, npy_intp size);
/* the same, 2-d, with the given shape (-1: any) */
PyArrayObject *exact_2d(PyObject *o, const char *name, int typenum, int writable, npy_intp rows,
                        npy_intp cols);
/* NPY_FLOAT32 or NPY_FLOAT64 from the array that fixes a call's dtype, else -1 */
int float_typenum(PyObject *o, const char *name);
/* the byte range [lo, hi) an array's elements lie in */
void extent(PyArrayObject *a, char **lo, char **hi);
/* 1 if a and b share memory, 0 if not, -1 on error */
int overlaps(PyArrayObject *a, PyArrayObject *b);
/* fail unless arrs[0..n_out) share no memory with any other of arrs[0..n) */
int check_disjoint(PyArrayObject **arrs, const char **names, int n_out, int n);
int check_act(int act);
int check_kind(int kind);
/* the optimizer's constant hyperparameters from the 12-tuple the Python layer caches */
int parse_hyper(PyObject *t, fo_optim_hyper *h);

/* ---- the method tables of each binding file, joined by module.c ---- */
extern PyMethodDef fo_optim_methods[];  /* bind_optim.c */
extern PyMethodDef fo_dense_methods[];  /* bind_dense.c */
extern PyMethodDef fo_net_methods[];    /* bind_net.c */
extern PyMethodDef fo_linear_methods[]; /* bind_linear.c */
/* bind_net.c: adds the types Network and Batches (and MAX_SLOTS) to the module */
int fo_net_add_types(PyObject *module);

#endif /* FASTOPT_BINDING_H */
