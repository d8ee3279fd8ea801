"""Architecture lint: smells that cost hours of training, found before the first epoch.

Each rule has an id (silence it with ``[lint] ignore = ["id"]`` in the spec), a severity
(``warning``: likely a mistake; ``info``: worth knowing), a reason and a fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise

from archcalc.analysis import Analysis
from archcalc.errors import SpecError
from archcalc.layers.registry import suggest
from archcalc.solve import window_facts
from archcalc.symbolic import evaluate, free_names, is_number, smallest_at_least

ACTIVATIONS = {"ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh"}
DOMINANT_SHARE = 0.5


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str  # "warning" or "info"
    layer: str  # layer name, or "model"
    reason: str
    fix: str


Rule = Callable[[Analysis], Iterator[Finding]]
RULES: dict[str, Rule] = {}


def rule(rule_id: str) -> Callable[[Rule], Rule]:
    def register(func: Rule) -> Rule:
        RULES[rule_id] = func
        return func
    return register


def lint(analysis: Analysis) -> list[Finding]:
    """Every finding of every rule, less the ids the spec's [lint] table ignores."""
    ignored = _ignored(analysis)
    return [f for rule_id, check in RULES.items() if rule_id not in ignored for f in check(analysis)]


def _ignored(analysis: Analysis) -> set[str]:
    table = dict(analysis.spec.lint)
    for key in table:
        if key != "ignore":
            raise SpecError(f"[lint] has no key {key!r}{suggest(key, ['ignore'])}", source=analysis.spec.source)
    ids = table.get("ignore", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise SpecError(f"[lint] ignore must be a list of rule ids, got {ids!r}", source=analysis.spec.source)
    for rule_id in ids:
        if rule_id not in RULES:
            raise SpecError(f"[lint] ignore: no rule {rule_id!r}{suggest(rule_id, list(RULES))} "
                            f"(rules: {', '.join(RULES)})", source=analysis.spec.source)
    return set(ids)


def _last_linear(analysis: Analysis) -> int | None:
    indices = [i for i, layer in enumerate(analysis.spec.layers) if layer.type == "Linear"]
    return indices[-1] if indices else None


@rule("final-softmax")
def _final_softmax(analysis: Analysis) -> Iterator[Finding]:
    last = analysis.spec.layers[-1]
    if last.type == "Softmax":
        yield Finding("final-softmax", "warning", last.name,
                      "the model ends in Softmax; trained with cross-entropy (which applies log-softmax "
                      "itself) the outputs go through softmax twice, which flattens the gradients and "
                      "slows or stalls learning",
                      "drop the final Softmax for training (archcalc bench --drop-final-softmax) and apply "
                      "softmax only when you need probabilities")


@rule("final-logsoftmax")
def _final_logsoftmax(analysis: Analysis) -> Iterator[Finding]:
    last = analysis.spec.layers[-1]
    if last.type == "LogSoftmax":
        yield Finding("final-logsoftmax", "info", last.name,
                      "a final LogSoftmax is redundant with cross-entropy (log-softmax is idempotent, so "
                      "training is unaffected); it is right with NLLLoss",
                      "drop it if you train with cross-entropy, keep it with NLLLoss")


@rule("activation-after-output")
def _activation_after_output(analysis: Analysis) -> Iterator[Finding]:
    last = _last_linear(analysis)
    if last is None:
        return
    for layer in analysis.spec.layers[last + 1:]:
        if layer.type in ACTIVATIONS:
            yield Finding("activation-after-output", "warning", layer.name,
                          f"a {layer.type} after the output layer clips or squashes the logits "
                          f"(a ReLU makes every negative logit 0, so those classes stop learning)",
                          f"remove {layer.name}; the output layer should emit raw logits")


@rule("floor-drops-rows")
def _floor_drops_rows(analysis: Analysis) -> Iterator[Finding]:
    values = dict(analysis.values)
    symbol = next((s for s in analysis.symbols if s not in values), None)
    for fact in window_facts(analysis, symbol, values):
        text = fact.dropped
        if text.startswith(("none", "depends", "periodic")):
            continue
        yield Finding("floor-drops-rows", "info", fact.layer,
                      f"axis {fact.axis}: the floor in the output size leaves input rows that no window "
                      f"reaches ({text}): they never influence the output",
                      "pad the input or the layer (or use ceil_mode = true for pooling) if the border "
                      "matters")


@rule("dominant-layer")
def _dominant_layer(analysis: Analysis) -> Iterator[Finding]:
    total = analysis.value(analysis.total_params)
    if not is_number(total) or total == 0:
        return
    for row in analysis.layers:
        count = analysis.value(row.params)
        if is_number(count) and count / total > DOMINANT_SHARE:
            yield Finding("dominant-layer", "info", row.name,
                          f"{row.name} holds {100 * count / total:.0f}% of the parameters "
                          f"({count:,} of {total:,}): most of the model's capacity, and of its risk of "
                          f"overfitting, sits in one layer",
                          "shrink its input (more pooling or fewer channels before it) or its width, or "
                          "use global pooling before the classifier")


@rule("bias-before-batchnorm")
def _bias_before_batchnorm(analysis: Analysis) -> Iterator[Finding]:
    layers = analysis.spec.layers
    for prev, layer in pairwise(layers):
        if layer.type.startswith("BatchNorm") and prev.type.startswith(("Conv", "Linear")) \
                and prev.args.get("bias", True):
            yield Finding("bias-before-batchnorm", "warning", prev.name,
                          f"{prev.name} has a bias, but {layer.name} subtracts the batch mean right after: "
                          "the bias cancels out and its parameters are wasted",
                          f"set bias = false on {prev.name}")


@rule("dropout-before-conv")
def _dropout_before_conv(analysis: Analysis) -> Iterator[Finding]:
    layers = analysis.spec.layers
    convs = [i for i, layer in enumerate(layers) if layer.type.startswith("Conv")]
    if not convs:
        return
    for layer in layers[:convs[-1]]:
        if layer.type == "Dropout":
            yield Finding("dropout-before-conv", "warning", layer.name,
                          "element-wise dropout on feature maps before a convolution is undone by spatial "
                          "correlation (neighbours carry the same information) and mostly adds noise",
                          "move dropout to the classifier, after Flatten, or use spatial dropout")


@rule("kernel-exceeds-input")
def _kernel_exceeds_input(analysis: Analysis) -> Iterator[Finding]:
    for cond in analysis.conditions:
        names = free_names(cond.expr)
        if cond.op != ">=" or len(names) != 1:
            continue
        name = next(iter(names))
        low = analysis.ranges[name].lo
        # report the layer that sets the network's lower bound, not every window on the way
        if evaluate(cond.expr, {name: 1}) >= cond.value or smallest_at_least(cond.expr, name, cond.value) != low:
            continue
        yield Finding("kernel-exceeds-input", "info", cond.layer_name,
                      f"{cond.what}: for small {name} the window is larger than its input "
                      f"({cond.text()}); the whole network needs {name} >= {low}",
                      f"make sure every input has {name} >= {low}, or pad the shortest inputs")


def severity_rank(finding: Finding) -> int:
    return 0 if finding.severity == "warning" else 1

