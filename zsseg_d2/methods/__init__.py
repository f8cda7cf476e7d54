"""The methods, one folder each: its meta-architecture (registered in Detectron2's
``META_ARCH_REGISTRY``), its config adder (registered with
:func:`zsseg_d2.config.register_method_config`) and its parts. A new method is a new folder and
one import line here (``docs/architecture.md``)."""

from . import cel, relation_net, sign, szn, zs3net  # noqa: F401  (registration)
