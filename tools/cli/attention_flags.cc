#include "attention_flags.h"

namespace cascade::cli {

void add_attention_flags(CLI::App* c, engine::AttentionOptions& o) {
  const engine::AttentionOptions defaults;
  for (const engine::OptionSpec& spec : engine::attention_option_specs()) {
    const std::string name = spec.name, flag = spec.flag;
    if (spec.is_flag()) {
      c->add_flag_callback(flag, [&o, name, flag] { engine::set_attention_option(o, name, "true", flag); }, spec.help);
      continue;
    }
    CLI::Option* opt = c->add_option_function<std::string>(
        flag, [&o, name, flag](const std::string& v) { engine::set_attention_option(o, name, v, flag); }, spec.help);
    if (std::holds_alternative<double engine::AttentionOptions::*>(spec.field)) opt->type_name("FLOAT");
    const std::string shown = engine::attention_option_text(defaults, name);
    if (!shown.empty()) opt->default_str(shown);
  }
}

}  // namespace cascade::cli
