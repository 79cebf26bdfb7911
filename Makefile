# cognito-stripe-billing: short targets; the scripts in local/ do the work.
.PHONY: demo dev up down soak burst bench test unit lint fmt build release deploy check-template invoke-list admin browser-test

VENV_BIN := $(CURDIR)/local/.venv/bin
# Python caches compiled modules beside their sources (in our venvs and git-ignored
# __pycache__ folders): a machine that turns that off pays for compiling moto, botocore,
# localstripe and cfn-lint again in every process. make test's Python tests alone took 70 s of
# CPU with it off and 47 s with it on. local/lib.sh does the same for the scripts run by hand.
unexport PYTHONDONTWRITEBYTECODE
STACK ?= cognito-stripe-billing-dev

demo:            ## Set up and run the scripted demo on the local emulators, then stop them
	local/demo.sh

dev:             ## Like demo, but leave the emulators, functions and the example site running (stop: make down)
	local/demo.sh --keep

up:              ## Start the emulators and the functions (cargo lambda watch)
	local/up.sh

down:            ## Stop everything local/up.sh started
	local/down.sh

soak:            ## Load and fault run: 2,000 signed events, 200 customers, AWS restarted mid-run (release build, shared with make bench)
	FUNCTIONS_PROFILE=release local/with-env.sh local/.venv/bin/python local/soak.py $(SOAK_ARGS)

burst:           ## 500 sign-ups and 250 purchases at once against API Gateway's key limits (README: Operations)
	local/with-env.sh local/.venv/bin/python local/burst.py $(BURST_ARGS)

bench:           ## Benchmark against Node.js and Python peers: bench/results.md and .png
	bench/run.sh

test:            ## Set up and run every test: unit, end to end on the emulators, browser, Stripe front, template
	local/test.sh

browser-test:    ## The example site's lifecycle in headless Chromium, against `make up` / `make dev`
	@set -a; . local/.run/env; set +a; local/.venv/bin/python local/browser_test.py

unit:            ## Unit tests only (no emulators)
	cargo test --workspace

lint:            ## Format check, clippy (warnings are errors) and the template checks
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	local/check-template.sh

fmt:             ## Format the code
	cargo fmt --all

check-template:  ## cfn-lint and sam validate --lint, offline
	local/check-template.sh

release:         ## Release build of every function for arm64, zipped, with their sizes
	local/release.sh

build:           ## sam build: every function for arm64 with cargo-lambda (zig from PyPI)
	local/sam-build.sh

deploy:          ## sam deploy (GUIDED=1 the first time: asks for the parameters, saves them)
	$(CURDIR)/local/.venv-sam/bin/sam deploy $(if $(GUIDED),--guided,)

admin:           ## billing-admin against the local environment, e.g. make admin ARGS="unreadable list"
	@set -a; . local/.run/env; set +a; cargo run --quiet --bin billing-admin -- $(ARGS)

# make invoke-<function> [EVENT=<name in events/<dir>/>], against `make up`, e.g.
#   make invoke-checkout EVENT=create-rest-api    make invoke-webhook EVENT=subscription-deleted
FUNCTION_EVENTS := post-confirmation=post-confirmation/sign-up checkout=checkout/create \
	portal=portal/me webhook=webhook/stripe/subscription-created \
	webhook-eventbridge=webhook/eventbridge/subscription-created

invoke-%:
	@set -e; default=$(patsubst $*=%,%,$(filter $*=%,$(FUNCTION_EVENTS))); \
	test -n "$$default" || { echo "no function $* (make invoke-list)"; exit 2; }; \
	file=events/$$(dirname $$default)/$${EVENT:-$$(basename $$default)}.json; \
	test -f $$file || { echo "no $$file (make invoke-list)"; exit 2; }; \
	set -a; . local/.run/env; set +a; export PATH=$(VENV_BIN):$$PATH; \
	if [ "$*" = webhook ]; then \
	  local/sign-webhook-event.py $$file > local/.run/signed-event.json; file=local/.run/signed-event.json; \
	fi; \
	cargo lambda invoke $* --invoke-address 127.0.0.1 --invoke-port $${LAMBDA_PORT:-9000} --data-file $$file

invoke-list:     ## The functions and events make invoke-<function> EVENT=<name> takes
	@for entry in $(FUNCTION_EVENTS); do fn=$${entry%%=*}; dir=$$(dirname $${entry#*=}); \
	  echo "make invoke-$$fn EVENT=<$$(ls events/$$dir | sed 's/\.json$$//' | tr '\n' ' ' | sed 's/ $$//')>"; done

# make logs-<LogicalId>, e.g. make logs-WebhookFunction (deployed stack $(STACK))
logs-%:
	$(CURDIR)/local/.venv-sam/bin/sam logs --stack-name $(STACK) --name $* --tail
