/* tools/lib/hfconfig.c: the shipped configs give the values written in
 * them (checked by hand here), and configs with unimplemented features are
 * rejected with a message naming the key. */
#include <string.h>

#include "../runtime/image_format.h"
#include "../tools/lib/hfconfig.h"
#include "harness.h"

static void test_shipped(void)
{
    mf_hf_config c;
    char err[256] = "";
    CHECK(mf_hfconfig_load(&c, "tests/data/arch-mixtral", err, sizeof err) == 0, "%s", err);
    CHECK(c.arch == MF_ARCH_MIXTRAL && c.hidden == 64 && c.n_layers == 2 && c.n_heads == 4 && c.n_kv_heads == 2 &&
              c.head_dim == 16 && c.expert_ffn == 96 && c.n_experts == 8 && c.top_k == 2 && c.vocab == 256 &&
              c.max_seq == 131072 && c.norm_topk && !c.qkv_bias && !c.qk_norm && !c.shared_ffn &&
              !c.tie_embeddings && c.rms_eps == 1e-5f && c.rope_theta == 10000.0f,
          "mixtral");
    CHECK(c.flags == MF_FLAG_NORM_TOPK, "mixtral flags");

    CHECK(mf_hfconfig_load(&c, "tests/data/arch-qwen2-moe", err, sizeof err) == 0, "%s", err);
    CHECK(c.arch == MF_ARCH_QWEN2_MOE && c.expert_ffn == 48 && c.shared_ffn == 96 && c.qkv_bias && !c.norm_topk &&
              c.n_experts == 8 && c.rms_eps == 1e-6f && c.rope_theta == 1e6f,
          "qwen2");
    CHECK(c.flags == (MF_FLAG_QKV_BIAS | MF_FLAG_SHARED_EXPERT), "qwen2 flags %u", c.flags);

    CHECK(mf_hfconfig_load(&c, "tests/data/arch-qwen3-moe-fused", err, sizeof err) == 0, "%s", err);
    CHECK(c.arch == MF_ARCH_QWEN3_MOE && c.head_dim == 16 && c.expert_ffn == 48 && c.n_experts == 8 &&
              c.norm_topk && c.qk_norm == 1,
          "qwen3");
    CHECK(mf_hfconfig_load(&c, "tests/data/arch-olmoe", err, sizeof err) == 0, "%s", err);
    CHECK(c.arch == MF_ARCH_OLMOE && c.expert_ffn == 48 && c.n_kv_heads == 4 && !c.norm_topk && c.qk_norm == 2,
          "olmoe");
    CHECK(c.flags == MF_FLAG_QK_NORM_FULL, "olmoe flags");
    CHECK(mf_hfconfig_load(&c, "tests/data/small-qwen3-moe-bpe", err, sizeof err) == 0, "%s", err);
    CHECK(c.vocab == 1024 && c.hidden == 192 && c.head_dim == 32 && c.n_experts == 32 && c.top_k == 4, "bpe");
    CHECK(mf_hfconfig_load(&c, "tests/data/no-such", err, sizeof err) == -1 && strstr(err, "no-such/config.json"),
          "missing: %s", err);
}

/* A minimal valid config per family, then one edit at a time. */
#define BASE_MIX "\"model_type\":\"mixtral\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4," \
                 "\"num_key_value_heads\":2,\"intermediate_size\":96,\"num_local_experts\":8,\"num_experts_per_tok\":2," \
                 "\"vocab_size\":256,\"max_position_embeddings\":128,\"rms_norm_eps\":1e-5"
#define BASE_QW2 "\"model_type\":\"qwen2_moe\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4," \
                 "\"moe_intermediate_size\":48,\"num_experts\":8,\"num_experts_per_tok\":2,\"vocab_size\":256," \
                 "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-6,\"shared_expert_intermediate_size\":96"

static int parse(const char *json, mf_hf_config *c, char *err, size_t n)
{
    return mf_hfconfig_parse(c, json, strlen(json), err, n);
}

static void expect_error(const char *json, const char *want)
{
    mf_hf_config c;
    char err[256] = "";
    int rc = parse(json, &c, err, sizeof err);
    CHECK(rc == -1 && strstr(err, want), "[%s]: got [%s], want [%s]", json, err, want);
}

static void test_crafted(void)
{
    mf_hf_config c;
    char err[256];
    /* head_dim absent -> hidden / heads; kv heads absent -> heads; old rope_theta key. */
    CHECK(parse("{" BASE_QW2 ",\"rope_theta\":5000}", &c, err, sizeof err) == 0, "%s", err);
    CHECK(c.head_dim == 16 && c.n_kv_heads == 4 && c.rope_theta == 5000.0f && c.qkv_bias, "defaults");
    CHECK(parse("{" BASE_QW2 ",\"rope_theta\":5000,\"qkv_bias\":false,\"head_dim\":null}", &c, err, sizeof err) == 0 &&
              !c.qkv_bias && c.head_dim == 16,
          "qkv_bias false");
    /* rope_parameters wins over rope_theta. */
    CHECK(parse("{" BASE_MIX ",\"rope_theta\":5,\"rope_parameters\":{\"rope_theta\":7,\"rope_type\":\"default\"},"
                "\"tie_word_embeddings\":true}", &c, err, sizeof err) == 0 &&
              c.rope_theta == 7.0f && c.tie_embeddings,
          "rope_parameters: %s", err);

    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"model_type\":\"llama\"}", "unsupported model_type \"llama\"");
    expect_error("{\"model_type\":\"deepseek_v3\"}", "unsupported model_type \"deepseek_v3\"");
    expect_error("{\"hidden_size\":3}", "missing model_type");
    expect_error("[1]", "not a JSON object");
    expect_error("{\"model_type\":", "bad JSON: line 1");
    expect_error("{" BASE_MIX "}", "rope_theta");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"sliding_window\":4096}", "sliding_window");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"use_sliding_window\":true}", "use_sliding_window");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"mlp_only_layers\":[1]}", "mlp_only_layers");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"decoder_sparse_step\":2}", "decoder_sparse_step");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"layer_types\":[\"full_attention\",\"sliding_attention\"]}",
                 "layer_types");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"clip_qkv\":8}", "clip_qkv");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"attention_bias\":true}", "attention_bias");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"hidden_act\":\"gelu\"}", "hidden_act \"gelu\"");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"rope_scaling\":{\"type\":\"yarn\"}}", "rope_scaling");
    expect_error("{" BASE_MIX ",\"rope_parameters\":{\"rope_theta\":1,\"rope_type\":\"yarn\"}}", "rope_type \"yarn\"");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"num_experts_per_tok\":9}", "num_experts_per_tok 9");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"num_key_value_heads\":3}", "num_key_value_heads 3");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"hidden_size\":64.5}", "hidden_size must be a positive integer");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"head_dim\":15}", "head_dim 15 is odd");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"rms_norm_eps\":1e-55}", "rms_norm_eps"); /* 0 as f32 */
    expect_error("{" BASE_MIX ",\"rope_theta\":1e39}", "rope_theta");
    expect_error("{\"model_type\":\"qwen2_moe\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                 "\"moe_intermediate_size\":48,\"num_experts\":8,\"num_experts_per_tok\":2,\"vocab_size\":256,"
                 "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-6,\"rope_theta\":1}",
                 "missing shared_expert_intermediate_size");
    /* Sizes are positive integers (0 is not a size); booleans are booleans. */
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"num_attention_heads\":0}",
                 "num_attention_heads must be a positive integer");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"hidden_size\":0}", "hidden_size must be a positive integer");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"num_key_value_heads\":\"2\"}",
                 "num_key_value_heads must be a positive integer");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"decoder_sparse_step\":0}", "decoder_sparse_step");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"decoder_sparse_step\":\"1\"}", "decoder_sparse_step");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"norm_topk_prob\":\"yes\"}", "norm_topk_prob must be true or false");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"use_sliding_window\":1}", "use_sliding_window must be true or false");
    /* Required sizes, each one left out (null counts as absent). */
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"max_position_embeddings\":null}", "missing max_position_embeddings");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"vocab_size\":null}", "missing vocab_size");
    expect_error("{" BASE_MIX ",\"rope_theta\":1,\"intermediate_size\":null}", "missing intermediate_size");
    expect_error("{" BASE_QW2 ",\"rope_theta\":1,\"moe_intermediate_size\":null}", "missing moe_intermediate_size");
}

int main(void)
{
    test_shipped();
    test_crafted();
    return mf_test_done("test_hfconfig");
}
