# cognito-stripe-billing: short targets; the scripts in local/ do the work.
.PHONY: demo dev up down test unit lint fmt build

demo:            ## Set up and run the scripted demo on the local emulators, then stop them
	local/demo.sh

dev:             ## Like demo, but leave the emulators and functions running (stop: make down)
	local/demo.sh --keep

up:              ## Start the emulators and the functions (cargo lambda watch)
	local/up.sh

down:            ## Stop everything local/up.sh started
	local/down.sh

test:            ## Set up and run every test: unit, end to end on the emulators, Stripe front
	local/test.sh

unit:            ## Unit tests only (no emulators)
	cargo test --workspace

lint:            ## Format check and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:             ## Format the code
	cargo fmt --all

build:           ## Debug build of every function
	cargo build --workspace
