"""VGG-16 (Simonyan & Zisserman 2015) as a fully convolutional network, FCN-32s style (Long et al.
2015): the 13 conv layers, then fc6 / fc7 as a 7x7 and a 1x1 convolution, giving the stride-32
"fc7" map the SZN thesis uses (section 5.2: 4096 x ceil(h/32) x ceil(w/32)).

Widths scale with ``MODEL.VGG.BASE_CHANNELS`` (64 = VGG-16) and ``MODEL.VGG.FC_CHANNELS`` (4096) so
tests can build a small net. ImageNet weights come from torchvision's VGG-16 state dict file
(``MODEL.VGG.PRETRAINED``, e.g. vgg16-397923af.pth, read from disk, never downloaded): its
``classifier.0`` (a Linear on the flattened 512x7x7 pool5 map) becomes fc6's 7x7 kernel.
"""

from __future__ import annotations

from pathlib import Path

import torch
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn

# conv layers per block; block b has BASE_CHANNELS * BLOCK_WIDTHS[b] channels
BLOCK_DEPTHS = (2, 2, 3, 3, 3)
BLOCK_WIDTHS = (1, 2, 4, 8, 8)


class VGG16Encoder(nn.Module):
    """The 5 conv blocks of VGG-16; ``forward`` returns each block's output before its pooling
    (strides 1, 2, 4, 8, 16) and the pool5 map (stride 32). Pools round up (ceil_mode), so a
    side of h pixels gives ceil(h/32) at stride 32."""

    def __init__(self, base_channels: int = 64):
        super().__init__()
        self.block_channels = [base_channels * w for w in BLOCK_WIDTHS]
        blocks, in_channels = [], 3
        for depth, channels in zip(BLOCK_DEPTHS, self.block_channels):
            layers: list[nn.Module] = []
            for _ in range(depth):
                layers += [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
                in_channels = channels
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)

    def conv_layers(self) -> list[nn.Conv2d]:
        """The 13 convolutions in order (conv1_1 ... conv5_3)."""
        return [m for m in self.blocks.modules() if isinstance(m, nn.Conv2d)]

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for block in self.blocks:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        return skips, x


class VGG16FCN(Backbone):
    """FCN-32s feature extractor: VGG-16 conv layers, fc6 (7x7 conv) and fc7 (1x1 conv), each
    with ReLU and dropout; one output, ``"dense"`` = fc7, FC_CHANNELS channels, stride 32."""

    def __init__(self, base_channels: int = 64, fc_channels: int = 4096, dropout: float = 0.5):
        super().__init__()
        self.encoder = VGG16Encoder(base_channels)
        top = self.encoder.block_channels[-1]
        self.fc6 = nn.Conv2d(top, fc_channels, 7, padding=3)  # "same" padding keeps ceil(h/32)
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.dropout = nn.Dropout2d(dropout)
        self.fc_channels = fc_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        _, pool5 = self.encoder(x)
        x = self.dropout(torch.relu(self.fc6(pool5)))
        return {"dense": self.dropout(torch.relu(self.fc7(x)))}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"dense": ShapeSpec(channels=self.fc_channels, stride=32)}

    @property
    def size_divisibility(self) -> int:
        return 32


def load_torchvision_vgg16(encoder: VGG16Encoder, path: str, fcn: VGG16FCN | None = None) -> None:
    """Copy torchvision's VGG-16 weights (``features.*``, and for ``fcn`` ``classifier.0/3``) from
    the state-dict file ``path``; a missing file or a width mismatch is an error naming both."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"MODEL.VGG.PRETRAINED {path!r} is not a file: give torchvision's VGG-16 state dict "
            "(vgg16-397923af.pth, downloaded beforehand), or '' for random initialisation"
        )
    state = torch.load(file, map_location="cpu", weights_only=True)
    feature_keys = sorted(
        {int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")}
    )
    targets: list[tuple[nn.Conv2d, str]] = list(
        zip(encoder.conv_layers(), [f"features.{i}" for i in feature_keys])
    )
    if len(feature_keys) != len(encoder.conv_layers()):
        raise ValueError(f"{path}: {len(feature_keys)} conv layers under 'features', VGG-16 has 13")
    pairs = [(conv.weight, state[f"{key}.weight"]) for conv, key in targets]
    pairs += [(conv.bias, state[f"{key}.bias"]) for conv, key in targets]
    if fcn is not None:
        fc6 = state["classifier.0.weight"].view(fcn.fc6.weight.shape[0], -1, 7, 7)
        pairs += [(fcn.fc6.weight, fc6), (fcn.fc6.bias, state["classifier.0.bias"])]
        pairs += [
            (fcn.fc7.weight, state["classifier.3.weight"][:, :, None, None]),
            (fcn.fc7.bias, state["classifier.3.bias"]),
        ]
    for param, value in pairs:
        if param.shape != value.shape:
            raise ValueError(
                f"{path} holds a tensor of shape {tuple(value.shape)} where the model has "
                f"{tuple(param.shape)}: ImageNet weights need MODEL.VGG.BASE_CHANNELS 64 and FC_CHANNELS 4096"
            )
        with torch.no_grad():
            param.copy_(value)


@BACKBONE_REGISTRY.register()
def build_vgg16_fcn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> VGG16FCN:
    """FCN-32s on VGG-16 (``MODEL.VGG``): one ``"dense"`` map, fc7, stride 32."""
    vgg = cfg.MODEL.VGG
    model = VGG16FCN(vgg.BASE_CHANNELS, vgg.FC_CHANNELS, vgg.DROPOUT)
    if vgg.PRETRAINED:
        load_torchvision_vgg16(model.encoder, vgg.PRETRAINED, fcn=model)
    return model
