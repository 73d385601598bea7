from codeinterp.cli.main import app

app()
