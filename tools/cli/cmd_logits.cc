// cascade logits: one forward pass over int32 ids from a .npy file ([T] or [1, T]); float32 logits
// [T, vocab] to a .npy file. The conformance hook: it needs no tokenizer.
#include <filesystem>

#include "attention_flags.h"
#include "commands.h"
#include "core/error.h"
#include "io/npy.h"
#include "model/model.h"

namespace cascade::cli {

void add_logits(CLI::App& app) {
  auto* c = app.add_subcommand("logits", "Logits of one forward pass over token ids (.npy in, .npy out)");
  struct Opts {
    engine::AttentionOptions att;
    std::string model, ids, out;
  };
  auto o = std::make_shared<Opts>();
  add_attention_flags(c, o->att);
  c->add_option("--model", o->model, "Model checkpoint (directory, .bin or .gguf)")->required();
  c->add_option("--ids", o->ids, "int32 (or int64) token ids, shape [T] or [1, T]")->required();
  c->add_option("--out", o->out, "Output .npy: float32 logits [T, vocab]")->required();
  c->callback([o] {
    const NpyArray a = read_npy(o->ids);
    if (!(a.shape.size() == 1 || (a.shape.size() == 2 && a.shape[0] == 1)))
      fail(o->ids, ": ids must have shape [T] or [1, T]");
    const std::vector<int32_t> ids = a.to_int32(o->ids);
    if (ids.empty()) fail(o->ids, ": no token ids");
    const auto attention = engine::make_attention(o->att);
    auto m = Model::load(o->model);
    engine::place_model(*m, o->att);
    Sequence s = m->new_sequence(attention.get());
    const Tensor logits = m->forward(s, ids);
    write_npy_f32(o->out, {logits.dim(0), logits.dim(1)}, logits.data());
  });
}

}  // namespace cascade::cli
