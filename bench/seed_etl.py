"""The seed's per-event converter, reproduced for the benchmark (boto3 + pandas).

Downloads one CSV object, reads it with pandas as headerless `no,name,score`, writes
Parquet, uploads it under the seed's output key (`input/...` -> `output/...parquet`).
Usage: seed_etl.py BUCKET KEY  (endpoint and keys from the AWS_* environment)
"""
import io
import os
import sys

import boto3
import pandas as pd


def main():
    bucket, key = sys.argv[1], sys.argv[2]
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    frame = pd.read_csv(io.BytesIO(body), header=None, names=["no", "name", "score"])
    out = io.BytesIO()
    frame.to_parquet(out)
    parts = key.split("/")
    parts[0] = "output"
    out_key = "/".join(parts).rsplit(".", 1)[0] + ".parquet"
    s3.put_object(Bucket=bucket, Key=out_key, Body=out.getvalue())


if __name__ == "__main__":
    main()
