"""Deploying `make synth`'s cloud assembly (cdk.out) with boto3, as `cdk bootstrap` + `cdk deploy` would.

What the CDK CLI does, reduced to what these stacks use:

* bootstrap: the asset bucket `cdk-hnb659fds-assets-<account>-<region>` and the SSM parameter
  `/cdk-bootstrap/hnb659fds/version` (the templates' `BootstrapVersion` parameter and rule read it);
* asset publishing: each file asset of `<stack>.assets.json` uploaded under its `objectKey` (a directory zipped);
* `CreateStack` from the template's S3 URL, with the manifest's termination protection.

The one change to a template: every function gets `EVENTS_URL` (the notifier's endpoint, which the functions read
through `bootstrap.RuntimeEnv` before the policy's `events_url`), pointing at the local PagerDuty stand-in, and, when
the policy has other `notifiers`, `NOTIFIER_URLS` (JSON: notifier name -> URL, read by `RuntimeEnv` likewise instead
of a JSM notifier's `api_url` and a webhook's `url`/`url_secret`), pointing at theirs. It is made here, before
`CreateStack`, and nothing else is changed (`inject_stand_ins` returns what it touched).
"""

from __future__ import annotations

import copy
import io
import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACK_WAIT_SECONDS = 300
POLL_SECONDS = 0.5
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class DeployError(AssertionError):
    pass


@dataclass(frozen=True)
class StackArtifact:
    name: str
    template: dict[str, Any]
    assets_file: Path
    region: str
    termination_protection: bool
    bootstrap_version: int
    bootstrap_parameter: str


def read_assembly(cdk_out: Path) -> dict[str, StackArtifact]:
    """The CloudFormation stacks of a cloud assembly, by name."""
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    stacks = {}
    for name, artifact in artifacts.items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        assets = [d for d in artifact.get("dependencies", []) if artifacts[d]["type"] == "cdk:asset-manifest"]
        if len(assets) != 1:
            raise DeployError(f"{name}: expected one asset manifest in cdk.out, found {assets}")
        stacks[name] = StackArtifact(
            name=name,
            template=json.loads((cdk_out / props["templateFile"]).read_text()),
            assets_file=cdk_out / artifacts[assets[0]]["properties"]["file"],
            region=artifact["environment"].rsplit("/", 1)[1],
            termination_protection=bool(props.get("terminationProtection")),
            bootstrap_version=int(props.get("requiresBootstrapStackVersion", 1)),
            bootstrap_parameter=props.get("bootstrapStackVersionSsmParameter", "/cdk-bootstrap/hnb659fds/version"),
        )
    return stacks


def _resolve(text: str, account: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account).replace("${AWS::Region}", region).replace("${AWS::Partition}", "aws")
    )


def _zip_directory(directory: Path) -> bytes:
    """The directory's files, as the CDK zips a `zip` asset (paths relative to it, file modes kept)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                info = zipfile.ZipInfo.from_file(path, path.relative_to(directory).as_posix())
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def bootstrap(clients: Any, stacks: list[StackArtifact], account: str) -> str:
    """The asset bucket and the bootstrap version parameter (what `cdk bootstrap` leaves that the stacks use)."""
    region = stacks[0].region
    bucket = f"cdk-hnb659fds-assets-{account}-{region}"
    s3 = clients.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    for parameter in {s.bootstrap_parameter for s in stacks}:
        version = max(s.bootstrap_version for s in stacks if s.bootstrap_parameter == parameter)
        clients.client("ssm").put_parameter(Name=parameter, Value=str(version), Type="String", Overwrite=True)
    return bucket


def _zipped(source: Path, cache: Path | None) -> bytes:
    """The zipped directory; kept in `cache` under the asset's name (`asset.<hash of its content>`), so an unchanged
    function package is not zipped again by the next run."""
    if cache is None:
        return _zip_directory(source)
    cached = cache / f"{source.name}.zip"
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(_zip_directory(source))
        partial.replace(cached)
    return cached.read_bytes()


def prune_zip_cache(cache: Path, cdk_out: Path) -> None:
    """Forget the zips of assets no longer in cdk.out."""
    current = {p.name for p in cdk_out.glob("asset.*")}
    for cached in cache.glob("asset.*.zip") if cache.is_dir() else ():
        if cached.name.removesuffix(".zip") not in current:
            cached.unlink()


def publish_assets(clients: Any, stack: StackArtifact, account: str, zip_cache: Path | None = None) -> list[str]:
    """Every file asset of the stack, uploaded where its template expects it; returns the object keys."""
    manifest = json.loads(stack.assets_file.read_text())
    s3 = clients.client("s3")
    keys = []
    for asset in manifest.get("files", {}).values():
        source = stack.assets_file.parent / asset["source"]["path"]
        body = _zipped(source, zip_cache) if asset["source"].get("packaging") == "zip" else source.read_bytes()
        for destination in asset["destinations"].values():
            bucket = _resolve(destination["bucketName"], account, stack.region)
            key = _resolve(destination["objectKey"], account, stack.region)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            keys.append(key)
    if manifest.get("dockerImages"):
        raise DeployError(f"{stack.name}: Docker image assets cannot be published here (no Docker)")
    return keys


def injected_variables(
    events_url: str, notifier_urls: dict[str, str], inspector_url: str | None = None
) -> dict[str, str]:
    """The variables every function gets: EVENTS_URL, NOTIFIER_URLS when there are other notifiers, and
    AWS_ENDPOINT_URL_INSPECTOR2 (boto3's per-service endpoint variable) for the Inspector stand-in LocalStack lacks."""
    out = {"EVENTS_URL": events_url}
    if notifier_urls:
        out["NOTIFIER_URLS"] = json.dumps(notifier_urls, sort_keys=True)
    if inspector_url:
        out["AWS_ENDPOINT_URL_INSPECTOR2"] = inspector_url
    return out


def inject_stand_ins(
    template: dict[str, Any], events_url: str, notifier_urls: dict[str, str], inspector_url: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A copy of the template whose functions send to the stand-ins (`injected_variables`); and the logical ids
    changed."""
    out = copy.deepcopy(template)
    changed = []
    for logical_id, resource in out["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            env = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
            injected = injected_variables(events_url, notifier_urls, inspector_url)
            clash = set(env) & set(injected)
            if clash:
                raise DeployError(f"{logical_id}: the synthesized template already sets {sorted(clash)}")
            env.update(injected)
            changed.append(logical_id)
    return out, changed


def create_stack(clients: Any, stack: StackArtifact, template: dict[str, Any], bucket: str) -> str:
    """Upload the template and start `CreateStack`; returns the stack id."""
    key = f"e2e/{stack.name}.template.json"
    clients.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(template).encode())
    response = clients.client("cloudformation").create_stack(
        StackName=stack.name,
        TemplateURL=f"https://{bucket}.s3.{stack.region}.amazonaws.com/{key}",
        Capabilities=CAPABILITIES,
        EnableTerminationProtection=stack.termination_protection,
    )
    return str(response["StackId"])


def failure_reasons(cloudformation: Any, stack_id: str) -> str:
    events = cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"]
    failed = [
        f"  {e['LogicalResourceId']} {e['ResourceType']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in reversed(events)
        if e["ResourceStatus"].endswith("FAILED")
    ]
    return "\n".join(failed) or "  (no resource failed)"


def wait_stack(cloudformation: Any, stack_id: str, wanted: str, timeout: float = STACK_WAIT_SECONDS) -> float:
    """Wait until the stack is `wanted` (e.g. CREATE_COMPLETE); returns the seconds waited; fails on any other
    settled status, or after `timeout`, with the failed resources and their reasons."""
    started = time.monotonic()
    status = "?"
    while time.monotonic() - started < timeout:
        status = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
        if status == wanted:
            return time.monotonic() - started
        if not status.endswith("_IN_PROGRESS"):
            raise DeployError(
                f"stack {stack_id.split('/')[1]}: expected {wanted}, got {status}\n"
                + failure_reasons(cloudformation, stack_id)
            )
        time.sleep(POLL_SECONDS)
    raise DeployError(
        f"stack {stack_id.split('/')[1]}: still {status} after {timeout:.0f} s (expected {wanted})\n"
        + failure_reasons(cloudformation, stack_id)
    )


def stack_resources(cloudformation: Any, stack_id: str) -> dict[str, str]:
    """Logical id -> status of every resource of the stack."""
    out = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_id):
        for resource in page["StackResourceSummaries"]:
            out[resource["LogicalResourceId"]] = resource["ResourceStatus"]
    return out


def stack_outputs(cloudformation: Any, stack_id: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def native_modules_not_in_overlay(cdk_out: Path, overlay: Path) -> dict[str, list[str]]:
    """Asset -> the top-level modules of its compiled extensions (*.so) that the overlay does not shadow: those
    would be imported from the package, built for the Lambda architecture, and fail to load on this machine."""
    shadowed = {p.name for p in overlay.iterdir()} if overlay.is_dir() else set()
    out = {}
    for asset in sorted(cdk_out.glob("asset.*")):
        if not asset.is_dir():
            continue
        native = {p.relative_to(asset).parts[0] for p in asset.rglob("*.so")}
        missing = sorted(native - shadowed)
        if missing:
            out[asset.name] = missing
    return out
