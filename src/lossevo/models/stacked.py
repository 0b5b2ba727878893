"""K models of one architecture as one module: the members of a population (lossevo.training.population).

Two ways, both giving ``[K, batch, classes]`` logits and each member's tensors as a ``[K, ...]``
view (its slice is its own model's tensor, so a member can be frozen, read or compared alone):

- :class:`ChannelStack` (HFTA's fusion, Wang et al., MLSys 2021): the K models' channels side by
  side, ``[batch, K * channels, H, W]``. A convolution becomes one grouped convolution
  (``groups * K``), BatchNorm one BatchNorm over ``K * C`` channels (per-channel statistics are
  per-member statistics), a linear layer one batched matmul; ReLU, pooling, dropout, flatten and
  residual additions act per channel and need nothing. No layout changes between layers, so it
  is fast on GPUs and CPUs alike. It applies when every layer with parameters is a Conv2d,
  BatchNorm2d or Linear, and is checked on a sample against the members themselves.
- :class:`VmapStack`: ``torch.func.stack_module_state`` + ``functional_call`` under ``vmap`` for
  any other model ``vmap`` can run (its batching rules move the member dimension between layers).

:func:`stack_kind` picks the first that reproduces the members' outputs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

# Modules that act on each channel (or element) alone: correct on side-by-side members as they are.
CHANNELWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Sequential,
    nn.ModuleList,
)


class Stack(nn.Module):
    """K models run as one: ``forward(x) -> [K, batch, classes]``."""

    size: int

    def set_dropout(self, p: float) -> None:
        from lossevo.data.augment import set_dropout

        set_dropout(self, p)

    def member_tensors(self) -> dict[str, torch.Tensor]:
        """Every per-member parameter and buffer as a ``[K, *shape]`` view, named as in one
        member's ``state_dict`` (shared counters such as ``num_batches_tracked`` included once per
        member as an expanded view)."""
        raise NotImplementedError


class StackedLinear(nn.Module):
    """K linear layers on side-by-side features ``[batch, K * in]`` -> ``[batch, K * out]``."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.size, self.out_features = len(layers), layers[0].out_features
        self.weight = nn.Parameter(torch.cat([layer.weight.detach() for layer in layers]))
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.cat([layer.bias.detach() for layer in layers])) if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.size
        weight = self.weight.view(k, self.out_features, -1)
        out = torch.einsum("bki,koi->bko", x.reshape(x.shape[0], k, -1), weight)
        if self.bias is not None:
            out = out + self.bias.view(k, self.out_features)
        return out.reshape(x.shape[0], -1)


def _fuse(modules: Sequence[nn.Module]) -> nn.Module:
    """The K members' module at one place of the architecture, fused (recursively)."""
    first, k = modules[0], len(modules)
    if isinstance(first, nn.Conv2d):
        convs = cast("list[nn.Conv2d]", list(modules))  # the members share one architecture
        conv = copy.deepcopy(first)
        conv.in_channels, conv.out_channels = first.in_channels * k, first.out_channels * k
        conv.groups = first.groups * k
        conv.weight = nn.Parameter(torch.cat([m.weight.detach() for m in convs]))
        if first.bias is not None:
            conv.bias = nn.Parameter(torch.cat([m.bias.detach() for m in convs if m.bias is not None]))
        return conv
    if isinstance(first, nn.BatchNorm2d):
        norm = copy.deepcopy(first)
        norm.num_features = first.num_features * k
        for name, _ in list(first.named_parameters(recurse=False)):
            setattr(norm, name, nn.Parameter(torch.cat([getattr(m, name).detach() for m in modules])))
        for name, value in list(first.named_buffers(recurse=False)):
            if value is not None and value.dim() > 0:
                setattr(norm, name, torch.cat([getattr(m, name) for m in modules]))
        return norm
    if isinstance(first, nn.Linear):
        return StackedLinear(cast("list[nn.Linear]", list(modules)))
    own = [*first.parameters(recurse=False), *(b for b in first.buffers(recurse=False) if b is not None)]
    if own:
        raise TypeError(
            f"{type(first).__name__} has parameters of its own and is not a Conv2d, BatchNorm2d or Linear"
        )
    if not isinstance(first, CHANNELWISE) and not list(first.children()):
        raise TypeError(f"{type(first).__name__} is not known to act per channel")
    fused = copy.copy(first)  # its own table of children: the members' modules stay as they are
    children: dict[str, nn.Module | None] = {}
    for name, child in first._modules.items():
        same = [cast(nn.Module, m._modules[name]) for m in modules]  # one architecture: all there
        children[name] = None if child is None else _fuse(same)
    fused._modules = children
    return fused


class ChannelStack(Stack):
    """K members side by side along the channels (see the module docstring)."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.size = len(models)
        self.shapes = {name: tuple(t.shape) for name, t in models[0].state_dict().items()}
        self.fused = _fuse(list(models))
        self.memory_format = torch.contiguous_format  # of the stacked activations

    def channels_last(self) -> ChannelStack:
        """Weights and activations channels-last, as a lone training's with trainer.channels_last."""
        self.memory_format = torch.channels_last
        return self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.repeat(1, self.size, *([1] * (x.dim() - 2)))
        if x.dim() == 4:
            inputs = inputs.contiguous(memory_format=self.memory_format)
        out = self.fused(inputs)
        return out.view(out.shape[0], self.size, -1).transpose(0, 1)

    def member_tensors(self) -> dict[str, torch.Tensor]:
        tensors = dict(self.fused.state_dict(keep_vars=True))
        out = {}
        for name, shape in self.shapes.items():
            t = tensors[name]
            out[name] = t.view(self.size, *shape) if t.dim() else t.expand(self.size)
        return out


class VmapStack(Stack):
    """K members' parameters stacked, run with ``vmap`` over ``functional_call``."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.size = len(models)
        params, buffers = stack_module_state(list(models))
        self._base = [copy.deepcopy(models[0]).to("meta")]  # architecture only; never moved by Lightning
        self._param_names, self._buffer_names = list(params), list(buffers)
        self.stacked = nn.ParameterList([nn.Parameter(params[n].detach()) for n in self._param_names])
        for i, name in enumerate(self._buffer_names):
            self.register_buffer(f"stacked_buffer_{i}", buffers[name])

    def set_dropout(self, p: float) -> None:
        from lossevo.data.augment import set_dropout

        set_dropout(self._base[0], p)

    def train(self, mode: bool = True) -> VmapStack:
        self._base[0].train(mode)
        return super().train(mode)

    def _stacked_buffers(self) -> list[torch.Tensor]:
        return [getattr(self, f"stacked_buffer_{i}") for i in range(len(self._buffer_names))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self._base[0]

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (p, b), (inputs,))

        params = dict(zip(self._param_names, self.stacked, strict=True))
        buffers = dict(zip(self._buffer_names, self._stacked_buffers(), strict=True))
        return vmap(one, in_dims=(0, 0, None), randomness="different")(params, buffers, x)

    def member_tensors(self) -> dict[str, torch.Tensor]:
        names = [*self._param_names, *self._buffer_names]
        return dict(zip(names, [*self.stacked, *self._stacked_buffers()], strict=True))


def stack_models(models: Sequence[nn.Module], sample: torch.Tensor) -> Stack:
    """The fastest stack that reproduces the members' outputs on ``sample``."""
    return stack_kind(models, sample)(models)


def stack_kind(models: Sequence[nn.Module], sample: torch.Tensor) -> type[Stack]:
    """The fastest kind of stack that reproduces these models' outputs on ``sample`` (train mode,
    as in a step); a model neither can stack raises with the reason."""
    expected = torch.stack([copy.deepcopy(m).train()(sample) for m in models])
    problems = []
    for kind in (ChannelStack, VmapStack):
        try:
            stack = kind([copy.deepcopy(m) for m in models])
            got = stack.train()(sample)
            if got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
                return kind
            problems.append(f"{kind.__name__} gives other outputs than the members")
        except Exception as err:
            problems.append(
                f"{kind.__name__}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            )
    raise TypeError("; ".join(problems))
