/* Counting heap allocations in a test program, to prove a code path allocates nothing.
 *
 * Include in exactly one file of a test program (it defines functions). While `counting` is
 * set, every allocation adds to n_alloc and every free to n_free:
 *  - plain build: the program defines malloc/calloc/realloc/free (and the aligned variants),
 *    which the dynamic linker binds ahead of glibc for the whole process; they forward to
 *    glibc's own entry points (__libc_malloc ...).
 *  - AddressSanitizer build: ASan owns malloc, so its malloc/free hooks count instead
 *    (install_counter() installs them; call it once before counting).
 * A test should also allocate on purpose while counting, so that a blind counter fails it. */
#ifndef PDM_ALLOC_COUNT_H
#define PDM_ALLOC_COUNT_H

#include <errno.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define PDM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PDM_TEST_ASAN 1
#endif
#endif

static volatile int counting;
static volatile unsigned long n_alloc, n_free;

#ifdef PDM_TEST_ASAN
#if defined(__has_include)
#if __has_include(<sanitizer/allocator_interface.h>)
#include <sanitizer/allocator_interface.h>
#define PDM_HAVE_ALLOCATOR_INTERFACE 1
#endif
#endif
#ifndef PDM_HAVE_ALLOCATOR_INTERFACE
/* GCC 12 ships libasan with this entry point but not the clang header that declares it. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
#endif

static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (counting)
        n_alloc++;
}

static void on_free(const volatile void *p)
{
    (void)p;
    if (counting)
        n_free++;
}

static int install_counter(void)
{
    return __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) > 0 ? 0 : -1;
}
#else
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t k, size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *__libc_memalign(size_t align, size_t n);

void *malloc(size_t n)
{
    if (counting)
        n_alloc++;
    return __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    if (counting)
        n_alloc++;
    return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    if (counting)
        n_alloc++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (counting && p)
        n_free++;
    __libc_free(p);
}

void *aligned_alloc(size_t align, size_t n)
{
    if (counting)
        n_alloc++;
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (counting)
        n_alloc++;
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

static int install_counter(void)
{
    return 0;
}
#endif

#endif
