"""A short tour of the Python API: derive, inspect, build and cross-check a spec."""

import archcalc

spec = archcalc.load_spec(archcalc.bundled_spec("speech_cnn"))
analysis = archcalc.analyze(spec)
for row in analysis.layers:
    print(f"{row.name:8} {row.out_shape!s:14} {row.params:>8,}  {row.params_formula}")
print("total", analysis.total_params)

model = archcalc.build(spec)  # torch.nn.Sequential with named modules conv1 ... softmax
report = archcalc.crosscheck(analysis)
print("cross-check failures:", len(report.failed))
