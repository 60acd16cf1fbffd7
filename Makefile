# Thin wrapper over meson so the README's two commands stay short.
BUILD ?= build
ASAN_BUILD ?= build-asan
DEPS = meson ninja-build pkg-config gcc clang git python3 openssl sqlite3 strace \
       zlib1g-dev libgit2-dev libssh2-1-dev libssl-dev libfyaml-dev libsqlite3-dev libcmocka-dev libclang-rt-14-dev \
       libsodium-dev age libmicrohttpd-dev libcurl4-openssl-dev etcd-server etcd-client libgpgme-dev gnupg openssh-client openssh-server chromium

.PHONY: all deps build test test-fast demo install clean fuzz bench

all: build

deps:
	@missing=""; for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing build dependencies:$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true >/dev/null

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	CC=clang meson setup $(ASAN_BUILD) -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

.PHONY: build-asan
build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# Unit and end-to-end tests, once normally and once under ASan+UBSan.
test: build build-asan
	@scripts/test.sh $(BUILD) $(ASAN_BUILD)

test-fast: build
	@scripts/test.sh $(BUILD)

demo: build
	@DRIFTLESS=$(BUILD)/driftless scripts/demo.sh

install: build
	meson install -C $(BUILD)

fuzz:
	scripts/fuzz.sh 60

bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
