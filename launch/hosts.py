"""gcloud command lines for the two kinds of hosts: TPU VMs (single host or pod slice) and
GPU VMs on Compute Engine. Pure functions of the arguments: nothing here runs anything."""

import dataclasses
import re
import shlex

from rt_jax.errors import UserError

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
ZONE_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
TPU_TYPE_RE = re.compile(r"^v(2|3|4|5litepod|5p|6e)-([0-9]+)$")
GPU_TYPE_RE = re.compile(r"^nvidia-[a-z0-9-]+$")

# The TPU software image that matches each TPU generation (Cloud TPU docs, "TPU software versions").
TPU_RUNTIME = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}


def check_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise UserError(
            f"--name={name!r}: expected a VM name of lower-case letters, digits and "
            "'-', starting with a letter (at most 63 characters)"
        )


def check_zone(zone: str) -> None:
    if not ZONE_RE.match(zone or ""):
        raise UserError(f"--zone={zone!r}: expected a Compute Engine zone such as us-central2-b")


@dataclasses.dataclass(frozen=True)
class TpuVm:
    """A TPU VM or pod slice; with `queued`, created through a queued resource."""

    gcloud: str
    name: str
    zone: str
    project: str = ""
    queued: bool = False

    install_extra = "tpu"
    ready_state = "READY"

    @property
    def queued_id(self) -> str:
        return f"{self.name}-qr"

    def _where(self) -> list[str]:
        return [f"--zone={self.zone}"] + ([f"--project={self.project}"] if self.project else [])

    def create(
        self, accelerator_type: str, runtime_version: str = "", spot: bool = False, valid_until: str = "", **_
    ) -> list[str]:
        match = TPU_TYPE_RE.match(accelerator_type or "")
        if not match:
            raise UserError(
                f"--accelerator_type={accelerator_type!r}: expected a TPU type such as "
                "v4-8, v5litepod-16, v5p-32 or v6e-8"
            )
        version = runtime_version or TPU_RUNTIME["v" + match.group(1)]
        if valid_until and not self.queued:
            raise UserError("--valid_until applies only with --queued")
        if self.queued:
            return (
                [
                    self.gcloud,
                    "compute",
                    "tpus",
                    "queued-resources",
                    "create",
                    self.queued_id,
                    f"--node-id={self.name}",
                    f"--accelerator-type={accelerator_type}",
                    f"--runtime-version={version}",
                ]
                + self._where()
                + (["--spot"] if spot else [])
                + ([f"--valid-until-duration={valid_until}"] if valid_until else [])
            )
        return (
            [
                self.gcloud,
                "compute",
                "tpus",
                "tpu-vm",
                "create",
                self.name,
                f"--accelerator-type={accelerator_type}",
                f"--version={version}",
            ]
            + self._where()
            + (["--spot"] if spot else [])
        )

    def describe(self) -> list[str]:
        return [self.gcloud, "compute", "tpus", "tpu-vm", "describe", self.name] + self._where() + ["--format=json"]

    def state(self) -> list[str]:
        """Prints one word: the queued resource's state (ACTIVE once the VM exists), else the VM's."""
        if self.queued:
            return (
                [self.gcloud, "compute", "tpus", "queued-resources", "describe", self.queued_id]
                + self._where()
                + ["--format=value(state.state)"]
            )
        return (
            [self.gcloud, "compute", "tpus", "tpu-vm", "describe", self.name]
            + self._where()
            + ["--format=value(state)"]
        )

    def ssh(self, command: str, worker: str = "all") -> list[str]:
        return (
            [self.gcloud, "compute", "tpus", "tpu-vm", "ssh", self.name]
            + self._where()
            + [f"--worker={worker}", f"--command={command}"]
        )

    def scp(self, local: str, remote: str, worker: str = "all") -> list[str]:
        return (
            [self.gcloud, "compute", "tpus", "tpu-vm", "scp", local, f"{self.name}:{remote}"]
            + self._where()
            + [f"--worker={worker}"]
        )

    def delete(self) -> list[str]:
        if self.queued:  # --force deletes the TPU VM the queued resource made, too
            return (
                [self.gcloud, "compute", "tpus", "queued-resources", "delete", self.queued_id]
                + self._where()
                + ["--force", "--quiet"]
            )
        return [self.gcloud, "compute", "tpus", "tpu-vm", "delete", self.name] + self._where() + ["--quiet"]

    @staticmethod
    def count_workers(describe_json: dict) -> int:
        """Hosts in the slice: one network endpoint per TPU VM worker."""
        return max(1, len(describe_json.get("networkEndpoints", [])))


@dataclasses.dataclass(frozen=True)
class GpuVm:
    """A Compute Engine VM with NVIDIA GPUs (Deep Learning VM image with CUDA drivers)."""

    gcloud: str
    name: str
    zone: str
    project: str = ""
    queued: bool = False

    install_extra = "gpu"
    ready_state = "RUNNING"

    def __post_init__(self):
        if self.queued:
            raise UserError("--queued applies only to TPU VMs (--platform=tpu)")

    def _where(self) -> list[str]:
        return [f"--zone={self.zone}"] + ([f"--project={self.project}"] if self.project else [])

    def create(
        self,
        accelerator_type: str,
        machine_type: str = "",
        gpu_count: int = 1,
        spot: bool = False,
        image_family: str = "",
        **_,
    ) -> list[str]:
        if not GPU_TYPE_RE.match(accelerator_type or ""):
            raise UserError(
                f"--accelerator_type={accelerator_type!r}: expected a GPU type such as "
                "nvidia-l4, nvidia-tesla-a100 or nvidia-h100-80gb"
            )
        if not machine_type:
            raise UserError(
                "--machine_type is required for a GPU VM (e.g. g2-standard-8 for "
                "nvidia-l4, a2-highgpu-1g for nvidia-tesla-a100)"
            )
        if gpu_count < 1:
            raise UserError(f"--gpu_count={gpu_count}: expected at least 1")
        return (
            [self.gcloud, "compute", "instances", "create", self.name]
            + self._where()
            + [
                f"--machine-type={machine_type}",
                f"--accelerator=type={accelerator_type},count={gpu_count}",
                f"--image-family={image_family or 'common-cu124-debian-11-py310'}",
                "--image-project=deeplearning-platform-release",
                "--maintenance-policy=TERMINATE",
                "--boot-disk-size=200GB",
                "--metadata=install-nvidia-driver=True",
            ]
            + (["--provisioning-model=SPOT"] if spot else [])
        )

    def describe(self) -> list[str]:
        return [self.gcloud, "compute", "instances", "describe", self.name] + self._where() + ["--format=json"]

    def state(self) -> list[str]:
        return [self.gcloud, "compute", "instances", "describe", self.name] + self._where() + ["--format=value(status)"]

    def ssh(self, command: str, worker: str = "all") -> list[str]:
        del worker  # one host
        return [self.gcloud, "compute", "ssh", self.name] + self._where() + [f"--command={command}"]

    def scp(self, local: str, remote: str, worker: str = "all") -> list[str]:
        del worker
        return [self.gcloud, "compute", "scp", local, f"{self.name}:{remote}"] + self._where()

    def delete(self) -> list[str]:
        return [self.gcloud, "compute", "instances", "delete", self.name] + self._where() + ["--quiet"]

    @staticmethod
    def count_workers(describe_json: dict) -> int:
        del describe_json
        return 1


PLATFORMS = {"tpu": TpuVm, "gpu": GpuVm}


def staged_run_command(argv: list[str], run_name: str, remote_dir: str) -> str:
    """Shell line for a single-host VM that runs a train command whose `--workdir=gs://...` it
    cannot write itself: copy that directory to local disk (nothing there yet is fine), train
    in the local copy (resuming from its checkpoint), copy it back whatever the exit status, and
    exit with the train command's status. The launcher's sweep_state.json is never copied back."""
    remote = [a for a in argv if a.startswith("--workdir=gs://")]
    if len(remote) != 1:
        raise UserError("--stage_on_vm needs a command template with one --workdir={workdir} and a gs:// sweep root")
    bucket = shlex.quote(remote[0].split("=", 1)[1])
    local = f"$HOME/rt_jax_runs/{run_name}"  # run names are [a-z0-9_-]: safe unquoted
    train = shlex.join([a for a in argv if a != remote[0]]) + f" --workdir={local}"
    sync = "gcloud storage rsync --recursive --exclude='(^|/)sweep_state\\.json$'"
    return (
        f"mkdir -p {local} && {{ {sync} {bucket} {local} || true; }} && cd {remote_dir} && "
        f"{train}; status=$?; {sync} {local} {bucket}; exit $status"
    )
