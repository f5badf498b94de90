// The continuation protocol's configurations (eval/study.h) from the study's method list: an item
// `NAME[+VARIANT...]` names an --attention value and options of the one option table
// (engine/attention_options.h), each VARIANT a short name (study_variant_names) or KEYWORD=VALUE for
// any keyword of that table, applied with set_attention_option so that its own checks and messages
// hold. The parser knows no method or keyword beyond the table it is given: a method or option added
// to the table is accepted here as it is.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/attention_options.h"
#include "eval/study.h"

namespace cascade::engine {

// The short variant names and the keyword=value each stands for, in help order.
const std::vector<std::pair<std::string, std::string>>& study_variant_names();

// The methods of a continuation study when none are given: exact attention, ADA and every KV
// compression method the option table names.
std::vector<std::string> default_study_methods();

// One item on top of `base` (device, dtype): attention = NAME, then each variant in turn.
// cascade::Error naming --methods and the item for an empty name or variant, an unknown variant, a
// keyword the study sets itself (attention, tau, kv_budget and the placement), or whatever the
// table refuses (an unknown NAME or keyword, a bad value).
AttentionOptions parse_study_method(const std::string& item, const AttentionOptions& base);

// Where the study's model runs, as attention options (device and dtype of p).
AttentionOptions study_placement(const StudyParams& p);

// Every configuration of a continuation study, named `ITEM@POINT` (`full` alone): `full` once,
// ADA-like methods (NAME ada or ada-*) at p.tau and each p.tau_sweep value (`ada+keys@tau=0.3`),
// every other method at each of p.budgets (`snapkv@0.25`). Each holds its attention factory
// (make_attention, so placement checks run here, before any model is read). cascade::Error for a
// budget outside (0, 1], a repeated budget, tau or configuration.
std::vector<StudyConfig> continuation_configs(const StudyParams& p);

}  // namespace cascade::engine
