# blkstack - the two entry points are `make run` and `make check`; see README.md.
# Everything real happens in meson/ninja; this file only picks build directories.

BUILD       ?= build
ASAN_BUILD  ?= build-asan
PREFIX      ?= /usr/local
MESON_SETUP  = meson setup --prefix=$(PREFIX)
RUN_DIR     ?= var

.PHONY: all build deps run check install clean

all: build

$(BUILD)/build.ninja:
	$(MESON_SETUP) $(BUILD)

$(ASAN_BUILD)/build.ninja:
	CC=clang $(MESON_SETUP) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug $(ASAN_BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	scripts/deps.sh build

# Installs what it needs, builds, and runs the daemon in the foreground on the default stack.
run:
	scripts/deps.sh run
	$(MAKE) --no-print-directory build
	scripts/run.sh $(BUILD) $(RUN_DIR)

# Installs what it needs, builds with gcc and with clang+ASan+UBSan, runs every test.
check:
	scripts/deps.sh check
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	tests/run.sh $(BUILD) $(ASAN_BUILD)

install: build
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
