# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# bash completion for weir(8). Installed as
# $(PREFIX)/share/bash-completion/completions/weir; or: source deploy/completion/weir.bash

# The shipped policies, from weir itself: its error for an unknown name
# lists them ("... there are: agent-default, demo").
_weir_policies() {
	local msg
	msg=$("${1:-weir}" policy show ' ' 2>&1)
	[[ $msg == *'there are: '* ]] || return
	msg=${msg##*there are: }
	printf '%s\n' ${msg//,/}
}

# weir run: options, then after -- (or the first word that is not one) the
# command and its own arguments.
_weir_run() {
	local cur=$1 prev=$2 i
	for ((i = 2; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--)
			break
			;;
		-p | --policy | -a | --allow | -e | --events | -u | --user | -g | --group | --setenv | \
		--socket)
			((i++))
			;;
		-*) ;;
		*)
			break
			;;
		esac
	done
	if ((i < COMP_CWORD)); then
		# past the options: COMMAND, then whatever it takes
		[ "${COMP_WORDS[i]}" = -- ] && ((i++))
		if ((i == COMP_CWORD)); then
			mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
		else
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		fi
		return
	fi
	case $prev in
	-p | --policy | -e | --events | --socket)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	-u | --user)
		mapfile -t COMPREPLY < <(compgen -u -- "$cur")
		return
		;;
	-g | --group)
		mapfile -t COMPREPLY < <(compgen -g -- "$cur")
		return
		;;
	-a | --allow)
		return
		;;
	--setenv)
		mapfile -t COMPREPLY < <(compgen -e -S = -- "$cur")
		compopt -o nospace 2>/dev/null
		return
		;;
	esac
	mapfile -t COMPREPLY < <(compgen -W '--policy --allow --audit --events --user --group
		--preserve-env --setenv --socket --standalone --quiet --verbose --help --' -- "$cur")
}

# The daemon's policy names: NAME.yaml in its default policy directory.
_weir_daemon_policies() {
	local f
	for f in /etc/weir/policies/*.yaml; do
		[ -e "$f" ] && f=${f##*/} && echo "${f%.yaml}"
	done
}

# The cgroup2 mount, as weir finds it: the first in mountinfo.
_weir_cgroup2() {
	awk '{ for (i = 7; i < NF; i++) if ($i == "-") break }
		$(i + 1) == "cgroup2" { print $5; exit }' /proc/self/mountinfo
}

# weir daemon, attach, detach, ps, reload, health, nri: OPTIONS (the words that take an
# argument in TAKES) and what the operand is.
_weir_ctl() {
	local cur=$1 prev=$2 opts=$3 operand=$4
	case $prev in
	--socket | --events | --nri-socket)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--policy-dir | --state-dir | --pin-root)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
		;;
	-p | --policy)
		mapfile -t COMPREPLY < <(compgen -W "$(_weir_daemon_policies)" -- "$cur"
			compgen -f -X '!*.y*ml' -- "$cur"; compgen -d -- "$cur")
		return
		;;
	--name | --metrics)
		return
		;;
	esac
	if [[ $cur == -* || -z $operand ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$opts --help" -- "$cur")
	elif [ "$operand" = cgroup ]; then
		# absolute, or relative to the cgroup2 mount
		if [[ $cur == /* ]]; then
			mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		else
			mapfile -t COMPREPLY < <(cd "$(_weir_cgroup2)" 2>/dev/null &&
				compgen -d -- "$cur")
		fi
	elif [ "$operand" = attached ]; then
		# what the daemon enforces on, as weir ps lists it (root only)
		mapfile -t COMPREPLY < <(compgen -W "$("${COMP_WORDS[0]}" ps 2>/dev/null |
			awk 'NR > 1 { print $1 }')" -- "$cur")
	fi
}

_weir() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}

	COMPREPLY=()
	if ((COMP_CWORD == 1)); then
		mapfile -t COMPREPLY < <(compgen -W 'run policy status cleanup daemon attach detach
			ps reload health nri oci-hook version help --help --version' -- "$cur")
		return
	fi
	case ${COMP_WORDS[1]} in
	run)
		_weir_run "$cur" "$prev"
		;;
	policy)
		if ((COMP_CWORD == 2)); then
			mapfile -t COMPREPLY < <(compgen -W 'check show verify suggest --help' -- "$cur")
		elif ((COMP_CWORD == 3)) && [ "${COMP_WORDS[2]}" = check ]; then
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		elif [ "${COMP_WORDS[2]}" = verify ] || [ "${COMP_WORDS[2]}" = suggest ]; then
			# files (a policy after --policy/--base, else event files), or the options
			if [[ $cur == -* ]]; then
				mapfile -t COMPREPLY < <(compgen -W "$([ "${COMP_WORDS[2]}" = verify ] &&
					echo --policy || echo --base) --help" -- "$cur")
			else
				mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			fi
		elif ((COMP_CWORD == 3)) && [ "${COMP_WORDS[2]}" = show ]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_weir_policies "${COMP_WORDS[0]}")" \
				-- "$cur")
		fi
		;;
	status)
		mapfile -t COMPREPLY < <(compgen -W '--json --help' -- "$cur")
		;;
	cleanup)
		# the stale runs, as weir status names them
		mapfile -t COMPREPLY < <(compgen -W "--help $("${COMP_WORDS[0]}" status 2>/dev/null |
			awk '$2 == "STALE" { print $1 }')" -- "$cur")
		;;
	daemon)
		_weir_ctl "$cur" "$prev" '--socket --policy-dir --metrics --events --state-dir
			--pin-root --detach-on-exit --verbose' ''
		;;
	attach)
		_weir_ctl "$cur" "$prev" '--socket --policy --name' cgroup
		;;
	detach)
		_weir_ctl "$cur" "$prev" '--socket' attached
		;;
	ps)
		_weir_ctl "$cur" "$prev" '--socket --json' ''
		;;
	reload | health)
		_weir_ctl "$cur" "$prev" '--socket' ''
		;;
	nri)
		_weir_ctl "$cur" "$prev" '--nri-socket --socket --plugin-name --plugin-idx --verbose' ''
		;;
	oci-hook)
		if ((COMP_CWORD == 2)); then
			mapfile -t COMPREPLY < <(compgen -W 'createRuntime poststop --socket --help' \
				-- "$cur")
		else
			_weir_ctl "$cur" "$prev" '--socket' ''
		fi
		;;
	version | help)
		((COMP_CWORD == 2)) && mapfile -t COMPREPLY < <(compgen -W '--help' -- "$cur")
		;;
	esac
}

complete -F _weir -o filenames weir
