"""The spec as a real torch model (nn.Sequential or torch.fx.GraphModule) and the cross-check against it.

torch is imported only when these functions are called.
"""
