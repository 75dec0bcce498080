# Thin front for Meson: every real rule lives in meson.build and scripts/.
.PHONY: all deps run check asan tsan bench lint format clean
all:
	@test -f build/build.ninja || meson setup build --buildtype=debugoptimized >/dev/null
	ninja -C build
deps:
	scripts/deps.sh
run: deps all
	scripts/run.sh
check: deps
	scripts/check.sh
asan:
	@test -f build-asan/build.ninja || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	ninja -C build-asan
tsan:
	@test -f build-tsan/build.ninja || meson setup build-tsan --buildtype=debug -Db_sanitize=thread -Db_lundef=false >/dev/null
	ninja -C build-tsan
	CONSENTD_BIN=$$PWD/build-tsan/consentd CONSENTD_E2E_SLOW=3 node --test tests/e2e/
bench: deps all
	bench/run.sh
	bench/smpp.sh
	if [ "$${BENCH_SCALE:-1}" != 0 ]; then bench/scale.sh; fi
lint: all
	clang-format --dry-run -Werror $$(git ls-files 'src/*.c' 'src/*.h' 'src/*.cc' 'tests/unit/*.c' 'tests/unit/*.h')
	cppcheck --project=build/compile_commands.json -ibuild/ --enable=warning,performance,portability --inline-suppr --error-exitcode=1 -q
format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'src/*.cc' 'tests/unit/*.c' 'tests/unit/*.h')
clean:
	rm -rf build build-asan build-tsan
