"""The job.json of the original API document (../shared/seed/jobs-api.md), used as-is by several tests."""

SEED_JOB = {
    "containers": [{
        "image": "index.tenxcloud.com/tenxcloud/perl_job:latest",
        "pull_always": True,
        "command": ["echo", "test-cmd"],
        "env": [{"name": "KEY", "value": "value"}],
        "ports": [{"port": 22, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "volume-name1", "mountPath": "/data"}],
    }],
    "volumes": [{"name": "volume-name1", "type": "host"}],
    "sync_timezone": True,
}
