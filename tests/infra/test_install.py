"""The installed CDK is whole: aws-cdk-lib's own `aws_cdk.cloud_assembly_schema`, not the copy of its dependency
aws-cdk-cloud-assembly-schema, which installs into the same directory (the Makefile reinstalls aws-cdk-lib last)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.infra


def test_aws_cdk_lib_owns_its_cloud_assembly_schema_module():
    from aws_cdk import cloud_assembly_schema

    jsii_type = getattr(cloud_assembly_schema.MetadataEntry, "__jsii_type__", "")
    assert jsii_type.startswith("aws-cdk-lib."), (
        f"aws_cdk/cloud_assembly_schema is aws-cdk-cloud-assembly-schema's copy ({jsii_type}): "
        "rm .venv/.installed && make install"
    )
