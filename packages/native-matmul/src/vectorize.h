#pragma once
// VLM_CLONES: compile an elementwise loop for AVX-512, AVX2 (haswell) and the baseline, picked
// at load (GCC's target_clones), with multiply-add contraction off so that the vector body and
// the scalar tail round alike, whatever the split between them.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define VLM_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default"), optimize("fp-contract=off")))
#elif defined(__GNUC__) && !defined(__clang__)
#define VLM_CLONES __attribute__((optimize("fp-contract=off")))
#else
#define VLM_CLONES
#endif
