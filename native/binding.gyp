# Four addons. hsm_erasure: Reed-Solomon; no -march, SIMD kernels carry per-function target attributes and are
# chosen at run time (dispatch.cc), so one binary runs on any x86-64; other architectures build the scalar path.
# hsm_pkcs11: the HSM lane (pkcs11-lane.cc), a native thread running queued PKCS#11 calls on the module pkcs11js
# loaded (headers from pkcs11js's own copy of the OASIS pkcs11.h).
# hsm_fs: FsShardStore's small folder reads and file opens in batches on its own threads (fs-batch.cc).
# hsm_gcm: AES-256-GCM into caller memory through the OpenSSL Node links (its headers ship with Node's; the
# symbols resolve from the node binary), not built on Windows, where node.lib does not export them; plus
# intel-ipsec-mb's VAES kernels, linked statically when ipsec-mb.cjs finds the library (its symbols kept private). It also
# compiles the GF kernels, for a put's whole stripe (seal, parity, tags) in one native job (stripe-seal.cc).
{
  "targets": [
    {
      "target_name": "hsm_erasure",
      "sources": [
        "addon.cc",
        "dispatch.cc",
        "gf-kernels-scalar.cc",
        "gf-kernels-ssse3.cc",
        "gf-kernels-avx2.cc",
        "gf-kernels-gfni.cc",
        "executor.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
      "ldflags": ["-pthread"],
      "xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++17", "GCC_OPTIMIZATION_LEVEL": "3"},
      "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/std:c++17"]}}
    }
  ],
  "conditions": [
    ["OS!='win'", {
      "targets": [
        {
          "target_name": "hsm_gcm",
          "sources": [
            "gcm-addon.cc", "gcm.cc", "gcm-imb.cc", "gcm-batch.cc", "stripe-seal.cc", "executor.cc",
            "dispatch.cc", "gf-kernels-scalar.cc", "gf-kernels-ssse3.cc", "gf-kernels-avx2.cc", "gf-kernels-gfni.cc"
          ],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
          "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
          "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-deprecated-declarations", "-pthread"],
          "ldflags": ["-pthread"],
          "variables": {"ipsec_mb": "<!(node ipsec-mb.cjs)"},
          "conditions": [
            ["ipsec_mb!=''", {"defines": ["HSM_HAVE_IPSEC_MB"], "libraries": ["<(ipsec_mb)", "-Wl,--exclude-libs,ALL"]}]
          ],
          "xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++17", "OTHER_LDFLAGS": ["-undefined", "dynamic_lookup"]}
        },
        {
          "target_name": "hsm_fs",
          "sources": ["fs-batch.cc", "executor.cc"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
          "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
          "ldflags": ["-pthread"],
          "xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++17"}
        },
        {
          "target_name": "hsm_pkcs11",
          "sources": ["pkcs11-lane.cc"],
          "include_dirs": [
            "<!(node -p \"require('node-addon-api').include_dir\")",
            "<!(node -p \"require('path').join(require('path').dirname(require.resolve('pkcs11js/package.json')), 'includes')\")"
          ],
          "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
          "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
          "ldflags": ["-pthread"],
          "libraries": ["-ldl"],
          "xcode_settings": {"CLANG_CXX_LANGUAGE_STANDARD": "c++17"}
        }
      ]
    }]
  ]
}
