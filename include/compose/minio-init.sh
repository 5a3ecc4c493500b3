#!/bin/sh
# minio-init of docker-compose.yaml: the bucket, and the applications' S3 user (its own keys,
# allowed only that bucket), so MinIO's root user stays with MinIO. Safe to run again.
set -eu
root_user="$(cat /run/secrets/minio_root_user)"
root_password="$(cat /run/secrets/minio_root_password)"
app_key="$(cat /run/secrets/s3_access_key)"
app_secret="$(cat /run/secrets/s3_secret_key)"
mc alias set local http://minio:9000 "$root_user" "$root_password"
mc mb --ignore-existing local/retrainer
cat > /tmp/retrainer-policy.json <<'JSON'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::retrainer", "arn:aws:s3:::retrainer/*"]}
  ]
}
JSON
mc admin policy create local retrainer-app /tmp/retrainer-policy.json
mc admin user add local "$app_key" "$app_secret"
mc admin policy attach local retrainer-app --user "$app_key" || true  # already attached on a rerun
echo "bucket retrainer and its S3 user are ready"
