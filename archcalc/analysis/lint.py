"""Architecture lint: smells that cost hours of training, found before the first epoch.

Each rule has an id (silence it with ``[lint] ignore = ["id"]`` in the spec), a severity
(``warning``: likely a mistake; ``info``: worth knowing), a reason and a fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from archcalc.analysis.engine import Analysis, LayerResult
from archcalc.analysis.solve import window_facts
from archcalc.errors import SpecError
from archcalc.layers.registry import suggest
from archcalc.spec import INPUT
from archcalc.symbolic import evaluate, free_names, is_number, smallest_at_least

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
    """Every finding of every rule, less the ids the spec's [lint] table ignores; a finding on the
    same layer of several copies of a block is reported once, for the block."""
    ignored = _ignored(analysis)
    return _per_block([f for rule_id, check in RULES.items() if rule_id not in ignored for f in check(analysis)],
                      analysis)


def _per_block(findings: list[Finding], analysis: Analysis) -> list[Finding]:
    """Fold findings that name the same layer of the same block in several copies into one."""
    copies = sorted((g for g in analysis.spec.groups if g.repeat is None), key=lambda g: -len(g.name))

    def home(layer: str) -> tuple[str, str] | None:  # (block, the layer's name inside it)
        group = next((g for g in copies if layer.startswith(g.name + ".")), None)
        return None if group is None else (group.block, layer[len(group.name) + 1:])

    folded: dict[tuple[str, str, str], list[Finding]] = {}
    out: list[Finding | tuple[str, str, str]] = []
    for finding in findings:
        where = home(finding.layer)
        if where is None:
            out.append(finding)
            continue
        key = (finding.id, *where)
        if key not in folded:
            folded[key] = []
            out.append(key)
        folded[key].append(finding)
    result = []
    for item in out:
        if isinstance(item, Finding):
            result.append(item)
            continue
        group = folded[item]
        first = group[0]
        if len(group) == 1:
            result.append(first)
            continue
        layer = f"{first.layer} (and {len(group) - 1} more copies of block {item[1]!r}, layer {item[2]!r})"
        result.append(Finding(first.id, first.severity, layer, first.reason,
                              f"{first.fix} (in [blocks.{item[1]}], once for every copy)"))
    return result


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


def _head(analysis: Analysis, output: LayerResult) -> list[LayerResult]:
    """The nodes after the output layer: from an output back to the Linear that feeds it.

    Empty when no Linear feeds the output through single-input, non-conv nodes.
    """
    stretch: list[LayerResult] = []
    node = output
    while node.kind.family != "linear":
        stretch.append(node)
        if node.kind.family == "conv" or len(node.inputs) != 1 or node.inputs[0] == INPUT:
            return []
        node = analysis.node(node.inputs[0])
    return stretch


@rule("final-softmax")
def _final_softmax(analysis: Analysis) -> Iterator[Finding]:
    for last in analysis.outputs:
        if last.type == "Softmax":
            yield Finding("final-softmax", "warning", last.name,
                          "the model ends in Softmax; trained with cross-entropy (which applies log-softmax "
                          "itself) the outputs go through softmax twice, which flattens the gradients and "
                          "slows or stalls learning",
                          "drop the final Softmax for training (archcalc bench --drop-final-softmax) and apply "
                          "softmax only when you need probabilities")


@rule("final-logsoftmax")
def _final_logsoftmax(analysis: Analysis) -> Iterator[Finding]:
    for last in analysis.outputs:
        if last.type == "LogSoftmax":
            yield Finding("final-logsoftmax", "info", last.name,
                          "a final LogSoftmax is redundant with cross-entropy (log-softmax is idempotent, so "
                          "training is unaffected); it is right with NLLLoss",
                          "drop it if you train with cross-entropy, keep it with NLLLoss")


@rule("activation-after-output")
def _activation_after_output(analysis: Analysis) -> Iterator[Finding]:
    seen: set[str] = set()
    for output in analysis.outputs:
        for node in reversed(_head(analysis, output)):
            if node.kind.family == "activation" and node.name not in seen:
                seen.add(node.name)
                yield Finding("activation-after-output", "warning", node.name,
                              f"a {node.type} after the output layer clips or squashes the logits "
                              f"(a ReLU makes every negative logit 0, so those classes stop learning)",
                              f"remove {node.name}; the output layer should emit raw logits")


@rule("unused-node")
def _unused_node(analysis: Analysis) -> Iterator[Finding]:
    used = analysis.ancestors([row.name for row in analysis.outputs])
    shared = {row.shared_with for row in analysis.layers if row.name in used and row.shared_with}
    for row in analysis.layers:
        if row.name not in used and row.name not in shared:  # a shared module is trained where it is used
            yield Finding("unused-node", "warning", row.name,
                          f"no output depends on {row.name}: it is computed (and its parameters counted and "
                          "trained) for nothing",
                          "feed it into the output path, list it in the output table's 'from', or remove it")


@rule("unused-block")
def _unused_block(analysis: Analysis) -> Iterator[Finding]:
    used = {g.block for g in analysis.spec.groups}
    for name in analysis.spec.blocks:
        if name not in used:
            yield Finding("unused-block", "warning", "model",
                          f"[blocks.{name}] is defined but no layer uses it, so its layers are never checked",
                          f"use it (a layer with block = {name!r}) or remove it")


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
    for prev in analysis.layers:
        after = analysis.successors(prev.name)
        if prev.kind.family not in ("conv", "linear") or not prev.args.get("bias", True) or prev.shared_with:
            continue
        if after and all(analysis.node(n).kind.has_batch_stats for n in after):
            norm = after[0]
            yield Finding("bias-before-batchnorm", "warning", prev.name,
                          f"{prev.name} has a bias, but {norm} subtracts the batch mean right after: "
                          "the bias cancels out and its parameters are wasted",
                          f"set bias = false on {prev.name}")


@rule("dropout-before-conv")
def _dropout_before_conv(analysis: Analysis) -> Iterator[Finding]:
    feeds_conv: set[str] = set()  # nodes with a convolution after them, found backwards
    for row in reversed(analysis.layers):
        if row.kind.family == "conv" or row.name in feeds_conv:
            feeds_conv.update(row.inputs)
    for row in analysis.layers:
        if row.kind.family == "dropout" and row.name in feeds_conv:
            yield Finding("dropout-before-conv", "warning", row.name,
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

