from bigml_fs.cli.main import app

app()
