"""Multi-process launch on GPUs (Detectron2's ``launch``, NCCL) or on CPUs (gloo).

Detectron2 0.6's ``launch`` requires CUDA. On a machine without GPUs, or with ``MODEL.DEVICE cpu``,
``--num-gpus N`` here means N CPU processes joined by the gloo backend, with Detectron2's
per-machine process group set up as its own launcher does.
"""

from __future__ import annotations

import argparse
import logging
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import launch as d2_launch
from detectron2.utils import comm

from .defaults import load_config

logger = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(
    main_func: Callable[..., Any],
    num_processes_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
    args: Sequence[Any] = (),
    use_cpu: bool = False,
    timeout: timedelta = timedelta(minutes=30),
) -> None:
    """Run ``main_func(*args)`` in ``num_processes_per_machine * num_machines`` processes."""
    if torch.cuda.is_available() and not use_cpu:
        d2_launch(
            main_func,
            num_processes_per_machine,
            num_machines,
            machine_rank,
            dist_url,
            args,
            timeout,
        )
        return
    world_size = num_processes_per_machine * num_machines
    if world_size == 1:
        main_func(*args)
        return
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError(
                "--dist-url auto only works on one machine; pass tcp://HOST:PORT of machine 0"
            )
        dist_url = f"tcp://127.0.0.1:{_free_port()}"
    logger.info(f"Launching {world_size} CPU processes (gloo) at {dist_url}")
    mp.start_processes(
        _cpu_worker,
        nprocs=num_processes_per_machine,
        args=(
            main_func,
            world_size,
            num_processes_per_machine,
            machine_rank,
            dist_url,
            tuple(args),
            timeout,
        ),
        daemon=False,
        start_method="spawn",
    )


def launch_from_args(main_func: Callable[..., Any], args: argparse.Namespace) -> None:
    """:func:`launch` with Detectron2's command-line arguments (``--num-gpus``, ``--num-machines``,
    ``--machine-rank``, ``--dist-url``, ``--config-file``, opts); CPU processes when the config's
    ``MODEL.DEVICE`` is cpu (also chosen automatically without a GPU)."""
    launch(
        main_func,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
        use_cpu=load_config(args.config_file, args.opts, device_fallback=False).MODEL.DEVICE
        == "cpu",
    )


def _cpu_worker(
    local_rank, main_func, world_size, per_machine, machine_rank, dist_url, args, timeout
):
    rank = machine_rank * per_machine + local_rank
    dist.init_process_group(
        "gloo", init_method=dist_url, world_size=world_size, rank=rank, timeout=timeout
    )
    for machine in range(world_size // per_machine):
        group = dist.new_group(list(range(machine * per_machine, (machine + 1) * per_machine)))
        if machine == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group  # what Detectron2's own launcher sets
    torch.set_num_threads(max(1, torch.get_num_threads() // per_machine))
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()
