{
  "targets": [
    {
      "target_name": "vlm_matmul",
      "sources": ["src/addon.c", "src/sgemm.c", "src/gelu.c", "src/layer-norm.c"],
      "cflags": ["-O3", "-fno-math-errno", "-pthread"],
      "ldflags": ["-pthread"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3"] },
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
