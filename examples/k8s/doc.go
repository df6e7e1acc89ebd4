// Package k8s holds Kubernetes manifests for running cleanup-media at
// scale: cronjob.yaml is a CronJob around an Indexed Job whose pods each
// run one key-range shard of the orphan check (--shards N, the shard taken
// from JOB_COMPLETION_INDEX) against an S3 bucket and PostgreSQL, with
// the shard boundaries from a ConfigMap. The package's test runs the
// manifest's container as the kubelet would: N processes, each with its
// JOB_COMPLETION_INDEX, against the test S3 server and PostgreSQL.
package k8s
