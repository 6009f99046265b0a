"""Code locations the unit tests of several filters share."""

# Where the instance reaches each host of the dagster_code_locations group.
ADDRESSES = {"code1": "10.0.0.12", "code2": "code2.example.net"}
# A grpc location whose server the dagster_code_location role deploys to code1.
DEPLOYED = {
    "name": "etl",
    "type": "grpc",
    "port": 4000,
    "deploy_to": "code1",
    "module": "etl.definitions",
    "source": {"git": "https://git.example.net/etl.git", "version": "v1.4.0"},
}
