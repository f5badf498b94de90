// Whether this build runs under AddressSanitizer or ThreadSanitizer (GCC defines __SANITIZE_*,
// clang answers __has_feature). Such a build runs several times slower than a plain one, and its
// shadow memory reserves terabytes of address space: tests that bound wall-clock time or the
// address space skip those checks there.
#pragma once

namespace cascade::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

}  // namespace cascade::test
