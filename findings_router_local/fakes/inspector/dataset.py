"""A log4shell estate for the Inspector / Security Hub stand-in, and N synthetic findings for the bench.

`log4shell_estate()`: Amazon Inspector findings (the `ListFindings` output shape of botocore's inspector2 model,
timestamps as datetimes) for CVE-2021-44228 and CVE-2021-45046 across the accounts of config/*.yaml (prod
111122223333 and 111122224444, stg 222233334444, dev 444455556666) and one account no environment owns
(999988887777): ECR images (repository, several tags, in-use counts; one with the image digest of the demo's
Inspector page), Lambda functions with log4j in a shared layer, Linux EC2 instances, and one Windows host whose
finding is filed under a Microsoft KB id with the CVE among its `relatedVulnerabilities` (that is how Inspector files
Windows findings; the KB ↔ log4shell link itself is made up for the exercise). One finding is filed under a GitHub
advisory id (GHSA-7rjr-3q55-vv33 is CVE-2021-45046's). Fixed versions 2.15.0, 2.16.0, 2.12.2, 2.17.1, and a Debian
package with no fix yet (fixedInVersion NotAvailable, fixAvailable NO). NVD CVSS 3.1 10.0 / 9.0, EPSS 0.944,
exploit available; EC2 findings carry Inspector's adjusted CVSS (one lowered: not reachable from the internet). A few
findings of other CVEs (Spring4Shell, HTTP/2 rapid reset, log4j 1.x) are there to be filtered out, and CLOSED
findings (an image rebuilt, an instance patched) for `--since`.

`asff_of` / `ocsf_of` give the same findings as Security Hub shows them (GetFindings / GetFindingsV2).
`synthetic_findings(n)` makes n distinct findings of one CVE for the bench. Everything is deterministic.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from typing import Any

NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)  # 3 a.m.
LOG4SHELL = "CVE-2021-44228"
LOG4SHELL_2 = "CVE-2021-45046"
GHSA_45046 = "GHSA-7rjr-3q55-vv33"
WINDOWS_KB = "KB5008212"
LOG4J_CORE = "org.apache.logging.log4j:log4j-core"
DEMO_IMAGE_DIGEST = "sha256:85107b778027c2101d96c320c915b3407a71bf5e2808a1db412d2e912629f518"
DEMO_FINDING_ID = "3f9c2a7e5b1d4c8f6a0e2b4d6c8e0f1a"  # the Inspector finding of the demo's page

PROD_A, PROD_B, STG, DEV, UNOWNED = "111122223333", "111122224444", "222233334444", "444455556666", "999988887777"
EU, US = "eu-central-1", "us-east-1"

VULNERABILITIES: dict[str, dict[str, Any]] = {
    LOG4SHELL: {
        "score": 10.0,
        "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
        "v2": (9.3, "AV:N/AC:M/Au:N/C:C/I:C/A:C"),
        "epss": 0.94358,
        "related": ["GHSA-jfh8-c2jp-5v3q"],
        "description": "Apache Log4j2 2.0-beta9 through 2.15.0 (excluding security releases 2.12.2, 2.12.3, and "
        "2.3.1) JNDI features used in configuration, log messages, and parameters do not protect against attacker "
        "controlled LDAP and other JNDI related endpoints.",
    },
    LOG4SHELL_2: {
        "score": 9.0,
        "vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H",
        "v2": (5.1, "AV:N/AC:H/Au:N/C:P/I:P/A:P"),
        "epss": 0.94341,
        "related": [GHSA_45046],
        "description": "It was found that the fix to address CVE-2021-44228 in Apache Log4j 2.15.0 was incomplete "
        "in certain non-default configurations.",
    },
    "CVE-2022-22965": {
        "score": 9.8,
        "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "v2": (7.5, "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
        "epss": 0.97447,
        "related": ["GHSA-36p3-wjmg-h94x"],
        "description": "A Spring MVC or Spring WebFlux application running on JDK 9+ may be vulnerable to remote "
        "code execution (RCE) via data binding.",
    },
    "CVE-2023-44487": {
        "score": 7.5,
        "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
        "v2": None,
        "epss": 0.9443,
        "related": [],
        "description": "The HTTP/2 protocol allows a denial of service (server resource consumption) because "
        "request cancellation can reset many streams quickly.",
    },
    "CVE-2021-4104": {
        "score": 7.5,
        "vector": "CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:H/A:H",
        "v2": (6.0, "AV:N/AC:M/Au:S/C:P/I:P/A:P"),
        "epss": 0.0851,
        "related": ["GHSA-fp5r-v3w9-4333"],
        "description": "JMSAppender in Log4j 1.2 is vulnerable to deserialization of untrusted data when the "
        "attacker has write access to the Log4j configuration.",
    },
}


def _hex(seed: str, length: int = 32) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _severity(score: float) -> str:
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    return "LOW" if score > 0 else "INFORMATIONAL"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    fixed: str | None  # None: NotAvailable
    manager: str = "JAR"
    path: str | None = None
    layer: str | None = None  # a Lambda layer ARN
    release: str | None = None


def ecr_image(
    account: str, region: str, repository: str, tags: list[str], *, in_use: int, digest: str | None = None
) -> dict[str, Any]:
    digest = digest or f"sha256:{_hex(f'{account}/{repository}/{tags}', 64)}"
    return {
        "type": "AWS_ECR_CONTAINER_IMAGE",
        "id": f"arn:aws:ecr:{region}:{account}:repository/{repository}/{digest}",
        "partition": "aws",
        "region": region,
        "details": {
            "awsEcrContainerImage": {
                "repositoryName": repository,
                "imageTags": tags,
                "pushedAt": NOW - dt.timedelta(days=24),
                "architecture": "amd64",
                "imageHash": digest,
                "registry": account,
                "platform": "AMAZON_LINUX_2023",
                "lastInUseAt": NOW - dt.timedelta(hours=1) if in_use else NOW - dt.timedelta(days=30),
                "inUseCount": in_use,
            }
        },
    }


def lambda_function(account: str, region: str, name: str, *, runtime: str, layers: list[str]) -> dict[str, Any]:
    return {
        "type": "AWS_LAMBDA_FUNCTION",
        "id": f"arn:aws:lambda:{region}:{account}:function:{name}:$LATEST",
        "partition": "aws",
        "region": region,
        "tags": {"service": name},
        "details": {
            "awsLambdaFunction": {
                "functionName": name,
                "runtime": runtime,
                "codeSha256": _hex(name, 43) + "=",
                "version": "$LATEST",
                "executionRoleArn": f"arn:aws:iam::{account}:role/{name}-role",
                "layers": layers,
                "packageType": "ZIP",
                "architectures": ["X86_64"],
                "lastModifiedAt": NOW - dt.timedelta(days=40),
            }
        },
    }


def ec2_instance(account: str, region: str, instance: str, name: str, *, platform: str) -> dict[str, Any]:
    return {
        "type": "AWS_EC2_INSTANCE",
        "id": instance,
        "partition": "aws",
        "region": region,
        "tags": {"Name": name},
        "details": {
            "awsEc2Instance": {
                "type": "m6i.large",
                "imageId": f"ami-{_hex(instance, 17)}",
                "ipV4Addresses": ["10.20.1.17"],
                "keyName": "platform-ops",
                "iamInstanceProfileArn": f"arn:aws:iam::{account}:instance-profile/{name}",
                "vpcId": "vpc-0a1b2c3d4e5f60789",
                "subnetId": "subnet-0f1e2d3c4b5a69788",
                "launchedAt": NOW - dt.timedelta(days=200),
                "platform": platform,
            }
        },
    }


def inspector_finding(
    account: str,
    resource: dict[str, Any],
    vulnerability_id: str,
    packages: list[Package],
    *,
    first_seen_days_ago: float,
    cve: str | None = None,
    status: str = "ACTIVE",
    updated_days_ago: float | None = None,
    related: list[str] | None = None,
    adjusted: tuple[float, list[tuple[str, str]]] | None = None,
    seed: str = "",
) -> dict[str, Any]:
    """One Inspector PACKAGE_VULNERABILITY finding as `ListFindings` returns it (timestamps as datetimes).
    `cve`: the vulnerability whose scores it carries (default: `vulnerability_id`); `adjusted`: Inspector's
    adjusted CVSS score and adjustments (EC2), else none."""
    facts = VULNERABILITIES[cve or vulnerability_id]
    region = resource["region"]
    finding_id = (
        DEMO_FINDING_ID
        if resource["id"].endswith(DEMO_IMAGE_DIGEST) and vulnerability_id == LOG4SHELL and status == "ACTIVE"
        else _hex(f"{account}{resource['id']}{vulnerability_id}{status}{seed}")
    )
    first = NOW - dt.timedelta(days=first_seen_days_ago)
    updated = NOW - dt.timedelta(days=updated_days_ago) if updated_days_ago is not None else first
    fixes = [p.fixed for p in packages]
    fix_available = "YES" if all(fixes) else ("PARTIAL" if any(fixes) else "NO")
    cvss = [{"baseScore": facts["score"], "scoringVector": facts["vector"], "version": "3.1", "source": "NVD"}]
    if facts["v2"] is not None:
        cvss.append({"baseScore": facts["v2"][0], "scoringVector": facts["v2"][1], "version": "2.0", "source": "NVD"})
    score = facts["score"] if adjusted is None else adjusted[0]
    finding: dict[str, Any] = {
        "findingArn": f"arn:aws:inspector2:{region}:{account}:finding/{finding_id}",
        "awsAccountId": account,
        "type": "PACKAGE_VULNERABILITY",
        "description": facts["description"],
        "title": f"{vulnerability_id} - {', '.join(p.name for p in packages)}",
        "remediation": {
            "recommendation": {
                "text": "Remediation is available. Please refer to the Fixed version in the vulnerability details "
                "section above."
                if fix_available != "NO"
                else "None Provided"
            }
        },
        "severity": _severity(score),
        "firstObservedAt": first,
        "lastObservedAt": max(updated, NOW - dt.timedelta(hours=5)) if status == "ACTIVE" else updated,
        "updatedAt": updated,
        "status": status,
        "resources": [resource],
        "inspectorScore": score,
        "packageVulnerabilityDetails": {
            "vulnerabilityId": vulnerability_id,
            "vulnerablePackages": [_package(p) for p in packages],
            "source": "NVD"
            if vulnerability_id.startswith("CVE-")
            else "WINDOWS_SERVER_2019"
            if vulnerability_id.startswith("KB")
            else "GITHUB",
            "cvss": cvss,
            "relatedVulnerabilities": list(related if related is not None else facts["related"]),
            "sourceUrl": f"https://nvd.nist.gov/vuln/detail/{cve or vulnerability_id}",
            "vendorSeverity": _severity(facts["score"]),
            "vendorCreatedAt": dt.datetime(2021, 12, 10, 10, 15, tzinfo=dt.UTC),
            "vendorUpdatedAt": dt.datetime(2025, 2, 4, 15, 15, tzinfo=dt.UTC),
            "referenceUrls": ["https://logging.apache.org/log4j/2.x/security.html"],
        },
        "fixAvailable": fix_available,
        "exploitAvailable": "YES",
        "exploitabilityDetails": {"lastKnownExploitAt": NOW - dt.timedelta(days=15)},
        "epss": {"score": facts["epss"]},
    }
    if adjusted is not None:
        finding["inspectorScoreDetails"] = {
            "adjustedCvss": {
                "scoreSource": "NVD",
                "cvssSource": "NVD",
                "version": "3.1",
                "score": adjusted[0],
                "scoringVector": facts["vector"],
                "adjustments": [{"metric": m, "reason": r} for m, r in adjusted[1]],
            }
        }
    return finding


def _package(package: Package) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": package.name,
        "version": package.version,
        "packageManager": package.manager,
        "fixedInVersion": package.fixed or "NotAvailable",
        "remediation": f"Update {package.name.rsplit(':', 1)[-1]} to {package.fixed}" if package.fixed else "None",
    }
    if package.path:
        record["filePath"] = package.path
    if package.layer:
        record["sourceLambdaLayerArn"] = package.layer
    if package.release:
        record["release"] = package.release
    return record


def _log4j(version: str, fixed: str | None, **where: Any) -> Package:
    return Package(LOG4J_CORE, version, fixed, **where)


def log4shell_estate() -> list[dict[str, Any]]:
    """The estate's Inspector findings (ACTIVE and CLOSED), in a stable order."""
    shared_layer = f"arn:aws:lambda:{EU}:{PROD_A}:layer:shared-java-libs:7"
    gateway = ecr_image(PROD_A, EU, "iot-gateway-api", ["2026.11.03", "prod"], in_use=6, digest=DEMO_IMAGE_DIGEST)
    gateway_old = ecr_image(PROD_A, EU, "iot-gateway-api", ["2026.10.20"], in_use=0)
    gateway_rebuilt = ecr_image(PROD_A, EU, "iot-gateway-api", ["2026.11.24"], in_use=0)
    telemetry = ecr_image(PROD_A, EU, "telemetry-ingest", ["1.8.2", "prod", "latest"], in_use=12)
    shadow = lambda_function(PROD_A, EU, "device-shadow-sync", runtime="JAVA_11", layers=[shared_layer])
    broker = ec2_instance(PROD_A, EU, "i-0a1b2c3d4e5f60718", "mqtt-broker-1", platform="AMAZON_LINUX_2")
    broker_2 = ec2_instance(PROD_A, EU, "i-0b2c3d4e5f6a70819", "mqtt-broker-2", platform="AMAZON_LINUX_2")
    historian = ec2_instance(PROD_A, EU, "i-0f9e8d7c6b5a40312", "scada-historian", platform="WINDOWS_SERVER_2019")
    signer = ecr_image(PROD_B, US, "firmware-signer", ["3.2.0", "prod"], in_use=2)
    ota_layer = f"arn:aws:lambda:{US}:{PROD_B}:layer:ota-java-deps:3"
    ota = lambda_function(PROD_B, US, "ota-manifest-builder", runtime="JAVA_8_AL2", layers=[ota_layer])
    runner = ec2_instance(PROD_B, EU, "i-07d6c5b4a3928e1f0", "build-runner", platform="DEBIAN_11")
    gateway_stg = ecr_image(STG, EU, "iot-gateway-api", ["stg-2026.11.20", "stg"], in_use=2)
    shadow_stg = lambda_function(STG, EU, "device-shadow-sync-stg", runtime="JAVA_11", layers=[shared_layer])
    tools = ecr_image(DEV, EU, "sandbox-tools", ["latest"], in_use=1)
    jumpbox = ec2_instance(DEV, EU, "i-0c4d5e6f7a8b90123", "dev-jumpbox", platform="AMAZON_LINUX_2023")
    legacy = ecr_image(UNOWNED, EU, "legacy-reporting", ["1.0"], in_use=0)

    jar = "opt/app/lib/log4j-core-{}.jar"
    internal = [("ATTACK_VECTOR", "The instance is not reachable from the internet (network reachability)")]
    debian = Package("apache-log4j2", "2.13.3", None, manager="OS", release="1~deb11u1")
    findings = [
        # prod, 111122223333 (eu-central-1)
        inspector_finding(PROD_A, gateway, LOG4SHELL, [_log4j("2.14.1", "2.15.0", path=jar.format("2.14.1"))], first_seen_days_ago=7.7),
        inspector_finding(PROD_A, gateway, LOG4SHELL_2, [_log4j("2.14.1", "2.16.0", path=jar.format("2.14.1"))], first_seen_days_ago=7.7),
        inspector_finding(PROD_A, gateway_old, LOG4SHELL, [_log4j("2.14.1", "2.15.0", path=jar.format("2.14.1"))], first_seen_days_ago=30),
        inspector_finding(PROD_A, telemetry, LOG4SHELL, [_log4j("2.14.0", "2.15.0", path=jar.format("2.14.0"))], first_seen_days_ago=0.4),
        inspector_finding(PROD_A, telemetry, LOG4SHELL_2, [_log4j("2.14.0", "2.16.0", path=jar.format("2.14.0"))], first_seen_days_ago=0.4),
        inspector_finding(PROD_A, telemetry, "CVE-2023-44487", [Package("nghttp2-libs", "1.51.0", "1.57.0", manager="OS", release="1.amzn2023")], first_seen_days_ago=12),
        inspector_finding(PROD_A, shadow, LOG4SHELL, [_log4j("2.13.3", "2.15.0", path="java/lib/log4j-core-2.13.3.jar", layer=shared_layer)], first_seen_days_ago=20, updated_days_ago=0.5),
        inspector_finding(PROD_A, shadow, GHSA_45046, [_log4j("2.13.3", "2.17.1", path="java/lib/log4j-core-2.13.3.jar", layer=shared_layer)], cve=LOG4SHELL_2, related=[LOG4SHELL_2], first_seen_days_ago=20),
        inspector_finding(PROD_A, broker, LOG4SHELL, [_log4j("2.11.1", "2.15.0", manager="JAR", path="/opt/activemq/lib/optional/log4j-core-2.11.1.jar")], first_seen_days_ago=9, adjusted=(10.0, [])),
        inspector_finding(PROD_A, historian, WINDOWS_KB, [Package("Windows Server 2019", "10.0.17763.2300", "10.0.17763.2366", manager="OS")], cve=LOG4SHELL, related=[LOG4SHELL, "CVE-2021-43883"], first_seen_days_ago=3, adjusted=(8.8, internal)),
        inspector_finding(PROD_A, telemetry, "CVE-2022-22965", [Package("org.springframework:spring-beans", "5.3.17", "5.3.18")], first_seen_days_ago=12),
        # prod, 111122224444 (firmware signing: us-east-1, and a build runner in eu-central-1)
        inspector_finding(PROD_B, signer, LOG4SHELL, [_log4j("2.12.1", "2.12.2", path=jar.format("2.12.1"))], first_seen_days_ago=5),
        inspector_finding(PROD_B, signer, LOG4SHELL_2, [_log4j("2.12.1", "2.12.2", path=jar.format("2.12.1"))], first_seen_days_ago=5),
        inspector_finding(PROD_B, ota, LOG4SHELL, [_log4j("2.14.0", "2.15.0", path="java/lib/log4j-core-2.14.0.jar", layer=ota_layer)], first_seen_days_ago=16),
        inspector_finding(PROD_B, runner, LOG4SHELL, [debian], first_seen_days_ago=2, adjusted=(8.1, internal)),
        inspector_finding(PROD_B, runner, LOG4SHELL_2, [debian], first_seen_days_ago=2, adjusted=(7.5, internal)),
        # stg, dev
        inspector_finding(STG, gateway_stg, LOG4SHELL, [_log4j("2.14.1", "2.15.0", path=jar.format("2.14.1"))], first_seen_days_ago=6),
        inspector_finding(STG, shadow_stg, LOG4SHELL, [_log4j("2.13.3", "2.15.0", path="java/lib/log4j-core-2.13.3.jar", layer=shared_layer)], first_seen_days_ago=20),
        inspector_finding(DEV, tools, LOG4SHELL, [_log4j("2.11.0", "2.15.0", path=jar.format("2.11.0"))], first_seen_days_ago=40),
        inspector_finding(DEV, jumpbox, LOG4SHELL_2, [_log4j("2.15.0", "2.16.0", path="/home/ec2-user/tools/log4j-core-2.15.0.jar")], first_seen_days_ago=0.2, adjusted=(9.0, [])),
        # an account no environment owns
        inspector_finding(UNOWNED, legacy, LOG4SHELL, [_log4j("2.8.2", "2.15.0", path=jar.format("2.8.2"))], first_seen_days_ago=60),
        inspector_finding(UNOWNED, legacy, "CVE-2021-4104", [Package("log4j:log4j", "1.2.17", None)], first_seen_days_ago=60),
        # fixed: the image was rebuilt, the instance patched
        inspector_finding(PROD_A, gateway_rebuilt, LOG4SHELL, [_log4j("2.14.1", "2.15.0", path=jar.format("2.14.1"))], first_seen_days_ago=3, status="CLOSED", updated_days_ago=0.8),
        inspector_finding(PROD_A, broker_2, LOG4SHELL, [_log4j("2.11.1", "2.15.0", path="/opt/activemq/lib/optional/log4j-core-2.11.1.jar")], first_seen_days_ago=9, status="CLOSED", updated_days_ago=1.5),
    ]  # fmt: skip
    return findings


def synthetic_findings(
    count: int, *, cve: str = LOG4SHELL, accounts: tuple[str, ...] = (PROD_A, PROD_B, STG, DEV), seed: str = "bench"
) -> list[dict[str, Any]]:
    """`count` distinct ACTIVE findings of `cve` (ECR images, Lambda functions, EC2 instances, in turn) across
    `accounts`, in eu-central-1: the bench's workload."""
    rng = random.Random(seed)
    findings = []
    for i in range(count):
        account = accounts[i % len(accounts)]
        kind = i % 3
        if kind == 0:
            resource = ecr_image(account, EU, f"service-{i % 97:02d}", [f"build-{i}", "prod"], in_use=rng.randint(0, 9))
        elif kind == 1:
            layer = f"arn:aws:lambda:{EU}:{account}:layer:java-libs-{i % 13}:{rng.randint(1, 9)}"
            resource = lambda_function(account, EU, f"function-{i:05d}", runtime="JAVA_11", layers=[layer])
        else:
            resource = ec2_instance(
                account, EU, f"i-{_hex(f'{seed}{i}', 17)}", f"worker-{i:05d}", platform="AMAZON_LINUX_2"
            )
        version = rng.choice(["2.8.2", "2.11.1", "2.13.3", "2.14.0", "2.14.1"])
        fixed = rng.choice(["2.15.0", "2.15.0", "2.17.1", None])
        package = _log4j(version, fixed, path=f"opt/app/lib/log4j-core-{version}.jar")
        findings.append(
            inspector_finding(
                account, resource, cve, [package], first_seen_days_ago=rng.uniform(0.1, 60), seed=f"{seed}{i}"
            )
        )
    return findings


# ------------------------------------------------------------------------------------------ as Security Hub shows them

ASFF_TYPES = {
    "AWS_ECR_CONTAINER_IMAGE": "AwsEcrContainerImage",
    "AWS_LAMBDA_FUNCTION": "AwsLambdaFunction",
    "AWS_EC2_INSTANCE": "AwsEc2Instance",
}
OCSF_TYPES = {
    "AWS_ECR_CONTAINER_IMAGE": "AWS::ECR::ContainerImage",
    "AWS_LAMBDA_FUNCTION": "AWS::Lambda::Function",
    "AWS_EC2_INSTANCE": "AWS::EC2::Instance",
}
OCSF_SEVERITY_IDS = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5, "UNTRIAGED": 0}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _asff_resource(resource: dict[str, Any], account: str) -> dict[str, Any]:
    kind = resource["type"]
    details = resource.get("details", {})
    out: dict[str, Any] = {"Type": ASFF_TYPES.get(kind, "Other"), "Partition": "aws", "Region": resource["region"]}
    if kind == "AWS_EC2_INSTANCE":
        out["Id"] = f"arn:aws:ec2:{resource['region']}:{account}:instance/{resource['id']}"
        instance = details["awsEc2Instance"]
        out["Details"] = {"AwsEc2Instance": {"Type": instance["type"], "ImageId": instance["imageId"]}}
    else:
        out["Id"] = resource["id"]
    if kind == "AWS_ECR_CONTAINER_IMAGE":
        image = details["awsEcrContainerImage"]
        out["Details"] = {
            "AwsEcrContainerImage": {
                "RegistryId": image["registry"],
                "RepositoryName": image["repositoryName"],
                "Architecture": image["architecture"],
                "ImageDigest": image["imageHash"],
                "ImageTags": image["imageTags"],
                "ImagePublishedAt": _iso(image["pushedAt"]),
            }
        }
    if kind == "AWS_LAMBDA_FUNCTION":
        function = details["awsLambdaFunction"]
        out["Details"] = {
            "AwsLambdaFunction": {
                "FunctionName": function["functionName"],
                "Runtime": function["runtime"].lower().replace("_", "."),
                "Layers": [{"Arn": arn} for arn in function.get("layers", [])],
            }
        }
    if resource.get("tags"):
        out["Tags"] = dict(resource["tags"])
    return out


def asff_of(finding: dict[str, Any]) -> dict[str, Any]:
    """The Inspector finding as Security Hub CSPM holds it (ASFF, `GetFindings`)."""
    details = finding["packageVulnerabilityDetails"]
    region = finding["findingArn"].split(":")[3]
    product = f"arn:aws:securityhub:{region}::product/aws/inspector"
    vulnerability: dict[str, Any] = {
        "Id": details["vulnerabilityId"],
        "VulnerablePackages": [
            {
                k2: p[k1]
                for k1, k2 in (
                    ("name", "Name"),
                    ("version", "Version"),
                    ("release", "Release"),
                    ("packageManager", "PackageManager"),
                    ("filePath", "FilePath"),
                    ("fixedInVersion", "FixedInVersion"),
                    ("remediation", "Remediation"),
                    ("sourceLambdaLayerArn", "SourceLayerArn"),
                )
                if k1 in p
            }
            for p in details["vulnerablePackages"]
        ],
        "Cvss": [
            {
                "Version": c["version"],
                "BaseScore": c["baseScore"],
                "BaseVector": c["scoringVector"],
                "Source": c["source"],
            }
            for c in details["cvss"]
        ],
        "Vendor": {"Name": details["source"], "VendorSeverity": details["vendorSeverity"]},
        "RelatedVulnerabilities": details["relatedVulnerabilities"],
        "FixAvailable": finding["fixAvailable"],
        "ExploitAvailable": finding["exploitAvailable"],
        "EpssScore": finding["epss"]["score"],
    }
    active = finding["status"] == "ACTIVE"
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding["findingArn"],
        "ProductArn": product,
        "ProductName": "Inspector",
        "CompanyName": "Amazon",
        "Region": region,
        "GeneratorId": "AWSInspector",
        "AwsAccountId": finding["awsAccountId"],
        "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
        "FirstObservedAt": _iso(finding["firstObservedAt"]),
        "LastObservedAt": _iso(finding["lastObservedAt"]),
        "CreatedAt": _iso(finding["firstObservedAt"]),
        "UpdatedAt": _iso(finding["updatedAt"]),
        "Severity": {"Label": finding["severity"]},
        "Title": finding["title"],
        "Description": finding["description"],
        "ProductFields": {
            "aws/inspector/ProductVersion": "2",
            "aws/inspector/FindingStatus": finding["status"],
            "aws/inspector/inspectorScore": str(finding["inspectorScore"]),
        },
        "Resources": [_asff_resource(r, finding["awsAccountId"]) for r in finding["resources"]],
        "Workflow": {"Status": "NEW" if active else "RESOLVED"},
        "RecordState": "ACTIVE" if active else "ARCHIVED",
        "Vulnerabilities": [vulnerability],
        "FindingProviderFields": {
            "Severity": {"Label": finding["severity"]},
            "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
        },
    }


def _ocsf_resource(resource: dict[str, Any], account: str) -> dict[str, Any]:
    kind = resource["type"]
    out: dict[str, Any] = {
        "cloud_partition": "aws",
        "owner": {"account": {"type": "AWS Account", "type_id": 10, "uid": account}},
        "region": resource["region"],
        "type": OCSF_TYPES.get(kind, kind),
        "uid": resource["id"],
    }
    if kind == "AWS_EC2_INSTANCE":
        out["uid_alt"] = f"arn:aws:ec2:{resource['region']}:{account}:instance/{resource['id']}"
    if kind == "AWS_ECR_CONTAINER_IMAGE":
        image = resource["details"]["awsEcrContainerImage"]
        out["image"] = {
            "uid": image["imageHash"],
            "repository_name": image["repositoryName"],
            "registry_uid": image["registry"],
            "tag": image["imageTags"][0] if image["imageTags"] else None,
            "in_use_count": image["inUseCount"],
        }
    if kind == "AWS_LAMBDA_FUNCTION":
        out["name"] = resource["details"]["awsLambdaFunction"]["functionName"]
    if resource.get("tags"):
        out["tags"] = [{"name": k, "value": v} for k, v in resource["tags"].items()]
    return out


def ocsf_of(finding: dict[str, Any]) -> dict[str, Any]:
    """The Inspector finding as Security Hub v2 holds it (OCSF Vulnerability Finding, `GetFindingsV2`)."""
    details = finding["packageVulnerabilityDetails"]
    region = finding["findingArn"].split(":")[3]
    account = finding["awsAccountId"]
    severity = finding["severity"].capitalize()
    active = finding["status"] == "ACTIVE"
    cve_id = details["vulnerabilityId"]
    return {
        "activity_id": 2 if active else 3,
        "category_uid": 2,
        "class_name": "Vulnerability Finding",
        "class_uid": 2002,
        "severity": severity,
        "severity_id": OCSF_SEVERITY_IDS[finding["severity"]],
        "status": "New" if active else "Resolved",
        "status_id": 1 if active else 4,
        "cloud": {"account": {"type": "AWS Account", "type_id": 10, "uid": account}, "provider": "AWS", "region": region},
        "finding_info": {
            "uid": finding["findingArn"],
            "title": finding["title"],
            "desc": finding["description"],
            "types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
            "created_time_dt": _iso(finding["firstObservedAt"]),
            "first_seen_time_dt": _iso(finding["firstObservedAt"]),
            "last_seen_time_dt": _iso(finding["lastObservedAt"]),
            "modified_time_dt": _iso(finding["updatedAt"]),
        },
        "metadata": {
            "product": {"name": "Inspector", "uid": f"arn:aws:securityhub:{region}::productv2/aws/inspector", "vendor_name": "AWS"},
            "uid": _hex(finding["findingArn"], 64),
            "version": "1.6.0",
        },
        "resources": [_ocsf_resource(r, account) for r in finding["resources"]],
        "vulnerabilities": [
            {
                "cve": {
                    "uid": cve_id,
                    "cvss": [
                        {"base_score": c["baseScore"], "vector_string": c["scoringVector"], "version": c["version"], "vendor_name": c["source"]}
                        for c in details["cvss"]
                    ],
                    "epss": {"score": f"{finding['epss']['score']:.5f}"},
                },
                "related_vulnerabilities": details["relatedVulnerabilities"],
                "affected_packages": [
                    {
                        "name": p["name"],
                        "version": p["version"],
                        "package_manager": p["packageManager"],
                        "fixed_in_version": p["fixedInVersion"],
                    }
                    for p in details["vulnerablePackages"]
                ],
                "is_exploit_available": finding["exploitAvailable"] == "YES",
                "is_fix_available": finding["fixAvailable"] != "NO",
                "fix_coverage": {"YES": "COMPREHENSIVE", "PARTIAL": "PARTIAL", "NO": "NONE"}[finding["fixAvailable"]],
            }
        ],
    }  # fmt: skip


def copy_findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(findings)
