from __future__ import annotations

import os

import pytest

from flowwarden.errors import UsageError
from flowwarden.util.destinations import object_url, object_writer
from tests.runs import test_crash

moto_server, s3_env = test_crash.moto_server, test_crash.s3_env  # the S3 server fixtures

# Above boto3's multipart threshold (8 MB): the upload goes in parts, from the spooled file.
BIG = os.urandom(1 << 20) * 12


def test_a_local_object_appears_whole_in_its_folder(tmp_path):
    with object_writer(str(tmp_path), "a/b/c.bin") as out:
        out.write(b"first ")
        assert not (tmp_path / "a/b/c.bin").exists()  # written beside it, renamed at the end
        out.write(b"second")
    assert (tmp_path / "a/b/c.bin").read_bytes() == b"first second"
    assert object_url(str(tmp_path), "a/b/c.bin") == str(tmp_path / "a/b/c.bin")


def test_a_local_block_that_raises_leaves_the_old_object(tmp_path):
    (tmp_path / "c.bin").write_bytes(b"old")
    with pytest.raises(RuntimeError), object_writer(str(tmp_path), "c.bin") as out:
        out.write(b"new")
        raise RuntimeError("stopped")
    assert [p.name for p in tmp_path.iterdir()] == ["c.bin"]
    assert (tmp_path / "c.bin").read_bytes() == b"old"


def test_an_s3_object_larger_than_a_part_arrives_whole(s3_env):
    client = s3_env.client()
    client.create_bucket(Bucket="out")
    with object_writer("s3://out/prefix/", "x/big.bin") as out:
        for start in range(0, len(BIG), 1 << 20):  # written in pieces, as the formats do
            out.write(BIG[start:start + (1 << 20)])
    assert object_url("s3://out/prefix/", "x/big.bin") == "s3://out/prefix/x/big.bin"
    got = client.get_object(Bucket="out", Key="prefix/x/big.bin")
    assert got["Body"].read() == BIG
    assert got["ETag"].endswith('-2"')  # a multipart upload's ETag: it went in two parts


def test_an_s3_block_that_raises_uploads_nothing(s3_env):
    client = s3_env.client()
    client.create_bucket(Bucket="half")
    with pytest.raises(RuntimeError), object_writer("s3://half", "half.bin") as out:
        out.write(b"half")
        raise RuntimeError("stopped")
    assert client.list_objects_v2(Bucket="half")["KeyCount"] == 0


def test_an_upload_that_fails_names_the_object(s3_env):
    with pytest.raises(UsageError, match="cannot write") as raised, \
            object_writer("s3://no-such-bucket/p", "a.json") as out:
        out.write(b"{}\n")
    assert "s3://no-such-bucket/p/a.json" in str(raised.value.location)
