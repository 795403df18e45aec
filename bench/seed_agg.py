"""The seed's daily aggregation, reproduced for the benchmark (boto3 + pandas).

Lists the day folder, downloads every Parquet file, concatenates them with pandas, finds
the row with the highest score (idxmax) and writes agg.txt in the seed's layout.
Usage: seed_agg.py BUCKET PREFIX  (endpoint and keys from the AWS_* environment)
"""
import io
import os
import sys

import boto3
import pandas as pd


def main():
    bucket, prefix = sys.argv[1], sys.argv[2]
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    frames = []
    for key in sorted(keys):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        frames.append(pd.read_parquet(io.BytesIO(body)))
    data = pd.concat(frames).reset_index()
    winner = data.loc[data["score"].idxmax()]
    s3.put_object(Bucket=bucket, Key=prefix + "agg.txt", Body=winner.to_string().encode())


if __name__ == "__main__":
    main()
