! Leaf photosynthesis and stomatal conductance of one big leaf (sunlit or shaded).
!
! - C3: Farquhar, von Caemmerer and Berry (1980) as in Collatz et al. (1991) and the CLM3/CLM4 technical notes:
!     w_c = Vcmax (ci - G*) / (ci + Kc (1 + o/Ko)), w_j = (ci - G*) / (ci + 2 G*) 4.6e-6 eps APAR, w_e = 0.5 Vcmax
! - C4: Collatz, Ribas-Carbo and Berry (1992): w_c = Vcmax, w_j = 4.6e-6 eps APAR, w_e = 4000 Vcmax ci / P.
! - Co-limitation (Collatz et al. 1991; Sellers et al. 1996, SiB2/CoLM): smaller roots of
!     theta w_p^2 - (w_c + w_j) w_p + w_c w_j = 0 (theta 0.98 C3, 0.80 C4), then
!     beta A^2 - (w_p + w_e) A + w_p w_e = 0 (beta 0.95). Net assimilation A_n = A - R_d.
! - Temperature (Q10 forms of CLM3 / SiB2, q = (T - tfrz - 25)/10): Kc = 30 x 2.1^q Pa, Ko = 30000 x 1.2^q Pa,
!   G* = 0.5 o / (2600 x 0.57^q) Pa; C3 Vcmax = Vcmax25 2.4^q / (1 + exp((-220000 + 710 T)/(R T)));
!   C4 Vcmax = Vcmax25 2^q / ((1 + exp(0.2 (15 - Tc))) (1 + exp(0.3 (Tc - 40)))) (Collatz et al. 1992);
!   R_d = 0.015 Vcmax (C3), 0.025 Vcmax (C4) (SiB2).
! - Soil water stress (CLM4.5 style): Vcmax is multiplied by btran and the Ball-Berry intercept is
!   max(b btran, 1e-6 mol m-2 s-1).
! - Ball and Berry (1987) with the leaf boundary layer: g_s = m A_n h_s P / c_s + b, h_s = e_s / e_i with
!   e_s = (g_s e_i + g_b e_a)/(g_s + g_b), solved as a quadratic in g_s; c_s = c_a - 1.4 A_n P / g_b,
!   c_i = c_s - 1.6 A_n P / g_s. The intercellular CO2 is the root of c_i - c_i,new(c_i) = 0, found by the
!   Illinois (modified regula falsi) method on a bracket that always contains it.
! Units: conductances mol m-2 s-1 inside, partial pressures Pa, rates mol CO2 m-2 (leaf) s-1.
module colm_photosynthesis
  use colm_const, only: r8, tfrz
  use colm_turbulence, only: qsat
  implicit none
  private
  public :: leaf_photosynthesis, photo_rates, photo_temperature, photo_temp_t, colimit
  public :: rgas_univ, umol_per_j, o2_frac, mol_to_kgc

  ! temperature factors of the leaf biochemistry at one leaf temperature, shared by the sunlit and shaded leaf
  type :: photo_temp_t
    real(r8) :: kc, ko, gammas                    ! Michaelis-Menten constants, CO2 compensation point (Pa)
    real(r8) :: vnum, vden                        ! Vcmax = Vcmax25 vnum / vden before the water stress (-)
  end type photo_temp_t

  real(r8), parameter :: rgas_univ = 8.314_r8     ! universal gas constant (J mol-1 K-1)
  real(r8), parameter :: umol_per_j = 4.6e-6_r8   ! photon flux per unit PAR energy (mol J-1)
  real(r8), parameter :: o2_frac = 0.209_r8       ! O2 mole fraction of air (mol mol-1)
  real(r8), parameter :: mol_to_kgc = 12.011e-3_r8 ! mass of carbon per mol CO2 (kg mol-1)
  real(r8), parameter :: g0_min = 1.0e-6_r8       ! smallest stomatal conductance (mol m-2 s-1)
  real(r8), parameter :: cs_min = 1.0e-6_r8       ! smallest leaf-surface CO2 partial pressure (Pa)
  real(r8), parameter :: ci_ca_c3 = 0.7_r8        ! start value of ci / ca without a previous value, C3 (-)
  real(r8), parameter :: ci_ca_c4 = 0.4_r8        ! the same for C4 (-)
  ! logs of the Q10 factors: b**q = exp(q log b) (one exp instead of a pow)
  real(r8), parameter :: ln_q10_kc = log(2.1_r8), ln_q10_ko = log(1.2_r8), ln_q10_gs = log(0.57_r8)
  real(r8), parameter :: ln_q10_v3 = log(2.4_r8), ln_q10_v4 = log(2.0_r8)

contains

  ! Smaller root of theta x^2 - (a + b) x + a b = 0 (smooth minimum of a and b), stable form.
  pure real(r8) function colimit(theta, a, b)
    real(r8), intent(in) :: theta                 ! curvature parameter, 0 < theta <= 1 (-)
    real(r8), intent(in) :: a, b                  ! the two limiting rates (mol m-2 s-1)
    real(r8) :: s, disc                           ! sum, discriminant (mol2 m-4 s-2)
    s = a + b
    disc = sqrt(max(s * s - 4.0_r8 * theta * a * b, 0.0_r8))
    if (s > 0.0_r8) then
      colimit = 2.0_r8 * a * b / (s + disc)
    else
      colimit = (s - disc) / (2.0_r8 * theta)
    end if
  end function colimit

  ! Temperature factors of the leaf biochemistry (header), independent of the leaf's Vcmax25 and water stress.
  pure subroutine photo_temperature(c3, tleaf, psurf, pt)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: tleaf                 ! leaf temperature (K)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    type(photo_temp_t), intent(out) :: pt         ! temperature factors (mixed)
    real(r8) :: q, tc                             ! (T - 25 C)/10 (-), temperature (deg C)
    tc = tleaf - tfrz
    q = (tc - 25.0_r8) / 10.0_r8
    pt%kc = 30.0_r8 * exp(q * ln_q10_kc)
    pt%ko = 30000.0_r8 * exp(q * ln_q10_ko)
    if (c3) then
      pt%gammas = 0.5_r8 * o2_frac * psurf / (2600.0_r8 * exp(q * ln_q10_gs))
      pt%vnum = exp(q * ln_q10_v3)
      pt%vden = 1.0_r8 + exp((-220000.0_r8 + 710.0_r8 * tleaf) / (rgas_univ * tleaf))
    else
      pt%gammas = 0.0_r8
      pt%vnum = exp(q * ln_q10_v4)
      pt%vden = (1.0_r8 + exp(0.2_r8 * (15.0_r8 - tc))) * (1.0_r8 + exp(0.3_r8 * (tc - 40.0_r8)))
    end if
  end subroutine photo_temperature

  ! Temperature- and water-stress-adjusted parameters of one leaf from the temperature factors.
  pure subroutine photo_apply(c3, vcmax25, btran, pt, vcmax, rd, kc, ko, gammas)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: vcmax25               ! Vcmax at 25 C of this big leaf (mol CO2 m-2 s-1)
    real(r8), intent(in) :: btran                 ! soil water stress factor (-)
    type(photo_temp_t), intent(in) :: pt          ! temperature factors (mixed)
    real(r8), intent(out) :: vcmax                ! maximum carboxylation rate (mol CO2 m-2 s-1)
    real(r8), intent(out) :: rd                   ! leaf dark respiration (mol CO2 m-2 s-1)
    real(r8), intent(out) :: kc                   ! Michaelis-Menten constant for CO2 (Pa)
    real(r8), intent(out) :: ko                   ! Michaelis-Menten constant for O2 (Pa)
    real(r8), intent(out) :: gammas               ! CO2 compensation point (Pa)
    kc = pt%kc
    ko = pt%ko
    gammas = pt%gammas
    vcmax = vcmax25 * pt%vnum / pt%vden
    vcmax = vcmax * btran
    if (c3) then
      rd = 0.015_r8 * vcmax
    else
      rd = 0.025_r8 * vcmax
    end if
  end subroutine photo_apply

  ! Temperature- and water-stress-adjusted parameters of the leaf biochemistry.
  pure subroutine photo_rates(c3, vcmax25, btran, tleaf, psurf, vcmax, rd, kc, ko, gammas)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: vcmax25               ! Vcmax at 25 C of this big leaf (mol CO2 m-2 s-1)
    real(r8), intent(in) :: btran                 ! soil water stress factor (-)
    real(r8), intent(in) :: tleaf                 ! leaf temperature (K)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    real(r8), intent(out) :: vcmax                ! maximum carboxylation rate (mol CO2 m-2 s-1)
    real(r8), intent(out) :: rd                   ! leaf dark respiration (mol CO2 m-2 s-1)
    real(r8), intent(out) :: kc                   ! Michaelis-Menten constant for CO2 (Pa)
    real(r8), intent(out) :: ko                   ! Michaelis-Menten constant for O2 (Pa)
    real(r8), intent(out) :: gammas               ! CO2 compensation point (Pa)
    type(photo_temp_t) :: pt                      ! temperature factors (mixed)
    call photo_temperature(c3, tleaf, psurf, pt)
    call photo_apply(c3, vcmax25, btran, pt, vcmax, rd, kc, ko, gammas)
  end subroutine photo_rates

  ! Gross assimilation at a given intercellular CO2 (co-limited Farquhar / Collatz rates).
  pure real(r8) function gross_assim(c3, vcmax, kc, ko, gammas, je, po2, psurf, ci) result(a)
    logical, intent(in) :: c3                     ! C3 pathway (-)
    real(r8), intent(in) :: vcmax                 ! (mol CO2 m-2 s-1)
    real(r8), intent(in) :: kc, ko, gammas        ! (Pa)
    real(r8), intent(in) :: je                    ! light-limited electron-transport rate term, eps 4.6e-6 APAR (mol m-2 s-1)
    real(r8), intent(in) :: po2                   ! O2 partial pressure (Pa)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    real(r8), intent(in) :: ci                    ! intercellular CO2 partial pressure (Pa)
    real(r8) :: wc, wj, we, wp                    ! limiting rates (mol CO2 m-2 s-1)
    if (c3) then
      wc = vcmax * (ci - gammas) / (ci + kc * (1.0_r8 + po2 / ko))
      wj = je * (ci - gammas) / (ci + 2.0_r8 * gammas)
      we = 0.5_r8 * vcmax
      wp = colimit(0.98_r8, wc, wj)
    else
      wc = vcmax
      wj = je
      we = 4000.0_r8 * vcmax * ci / psurf
      wp = colimit(0.80_r8, wc, wj)
    end if
    a = colimit(0.95_r8, wp, we)
  end function gross_assim

  ! Ball-Berry stomatal conductance with the boundary layer (quadratic in g_s), mol m-2 s-1.
  pure real(r8) function ballberry_gs(an, cs, psurf, g1, bb, gb, hra) result(gs)
    real(r8), intent(in) :: an                    ! net assimilation (mol CO2 m-2 s-1)
    real(r8), intent(in) :: cs                    ! leaf-surface CO2 (Pa)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    real(r8), intent(in) :: g1                    ! Ball-Berry slope (-)
    real(r8), intent(in) :: bb                    ! Ball-Berry intercept (mol m-2 s-1)
    real(r8), intent(in) :: gb                    ! leaf boundary-layer conductance (mol m-2 s-1)
    real(r8), intent(in) :: hra                   ! canopy-air vapour pressure / leaf saturation vapour pressure (-)
    real(r8) :: aa, bq, cq                        ! A = m An P / cs, quadratic coefficients (mol m-2 s-1)
    if (an <= 0.0_r8) then
      gs = bb
      return
    end if
    aa = g1 * an * psurf / cs
    bq = gb - aa - bb
    cq = gb * (aa * hra + bb)
    if (bq > 0.0_r8) then
      gs = 2.0_r8 * cq / (bq + sqrt(bq * bq + 4.0_r8 * cq))
    else
      gs = 0.5_r8 * (-bq + sqrt(bq * bq + 4.0_r8 * cq))
    end if
  end function ballberry_gs

  ! Photosynthesis and stomatal resistance of one big leaf.
  pure subroutine leaf_photosynthesis(c3, vcmax25, effcon, g1, g0, btran, apar, tleaf, psurf, co2_ppm, ea, rb, &
                                      an, ag, rd, ci, cs, gs, rs, ci_guess, pt_in, ei_in)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: vcmax25               ! Vcmax at 25 C of this big leaf (mol CO2 m-2 s-1)
    real(r8), intent(in) :: effcon                ! quantum efficiency (mol CO2 mol-1 photon)
    real(r8), intent(in) :: g1                    ! Ball-Berry slope (-)
    real(r8), intent(in) :: g0                    ! Ball-Berry intercept (mol H2O m-2 s-1)
    real(r8), intent(in) :: btran                 ! soil water stress factor (-)
    real(r8), intent(in) :: apar                  ! absorbed PAR per unit leaf area (W m-2)
    real(r8), intent(in) :: tleaf                 ! leaf temperature (K)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    real(r8), intent(in) :: co2_ppm               ! CO2 mole fraction of canopy air (umol mol-1)
    real(r8), intent(in) :: ea                    ! vapour pressure of canopy air (Pa)
    real(r8), intent(in) :: rb                    ! leaf boundary-layer resistance (s m-1)
    real(r8), intent(out) :: an                   ! net assimilation (mol CO2 m-2 s-1)
    real(r8), intent(out) :: ag                   ! gross assimilation (mol CO2 m-2 s-1)
    real(r8), intent(out) :: rd                   ! dark respiration (mol CO2 m-2 s-1)
    real(r8), intent(out) :: ci                   ! intercellular CO2 (Pa)
    real(r8), intent(out) :: cs                   ! leaf-surface CO2 (Pa)
    real(r8), intent(out) :: gs                   ! stomatal conductance to water vapour (mol m-2 s-1)
    real(r8), intent(out) :: rs                   ! stomatal resistance (s m-1)
    real(r8), intent(in), optional :: ci_guess    ! start value for ci, e.g. the previous leaf iteration's (Pa)
    type(photo_temp_t), intent(in), optional :: pt_in ! photo_temperature(c3, tleaf, psurf) if known (mixed)
    real(r8), intent(in), optional :: ei_in       ! saturation vapour pressure at tleaf (qsat) if known (Pa)
    real(r8) :: vcmax, kc, ko, gammas             ! biochemical parameters (mol m-2 s-1, Pa)
    real(r8) :: je                                ! light term (mol m-2 s-1)
    real(r8) :: ca, po2                           ! CO2 and O2 partial pressures (Pa)
    real(r8) :: gb                                ! boundary-layer conductance (mol m-2 s-1)
    real(r8) :: bb                                ! stressed Ball-Berry intercept (mol m-2 s-1)
    real(r8) :: ei, dum1, dum2, dum3              ! leaf saturation vapour pressure (Pa), unused
    real(r8) :: hra                               ! humidity ratio at the leaf (-)
    real(r8) :: lo, hi, flo, fhi, x, fx           ! bracket and function values (Pa)
    real(r8) :: hi0, g, fg, g2, f2, dg            ! upper bound (Pa), guess and neighbour with residuals (Pa), offset (Pa)
    logical :: bracketed, done                    ! a bracket is known; the guess already meets the tolerance
    integer :: it, side

    ca = co2_ppm * 1.0e-6_r8 * psurf
    po2 = o2_frac * psurf
    gb = psurf / (rgas_univ * tleaf * rb)
    bb = max(g0 * btran, g0_min)
    if (present(pt_in)) then
      call photo_apply(c3, vcmax25, btran, pt_in, vcmax, rd, kc, ko, gammas)
    else
      call photo_rates(c3, vcmax25, btran, tleaf, psurf, vcmax, rd, kc, ko, gammas)
    end if
    if (present(ei_in)) then
      ei = ei_in
    else
      call qsat(tleaf, psurf, ei, dum1, dum2, dum3)
    end if
    hra = min(max(ea, 0.05_r8 * ei), ei) / ei
    je = effcon * umol_per_j * max(apar, 0.0_r8)

    if (je <= 0.0_r8 .or. vcmax <= 0.0_r8) then
      ! dark or fully stressed: no assimilation, minimum conductance
      ag = 0.0_r8
      an = -rd
      gs = bb
      cs = max(ca - 1.4_r8 * an * psurf / gb, cs_min)
      ci = cs - 1.6_r8 * an * psurf / gs
    else
      hi0 = ca + rd * psurf * (1.4_r8 / gb + 1.6_r8 / bb) + 1.0_r8
      bracketed = .false.
      done = .false.
      if (present(ci_guess)) then
        ! warm start: the residual at the guess (accepted if it already meets the tolerance of the loop below),
        ! then a bracket [g - dg, g] or [g, g + dg] if the root is that close, otherwise the full bracket
        ! narrowed on the side the guess tells (the full bracket [0, hi0] if anything is degenerate)
        g = ci_guess
        ! no previous value (first leaf iteration): a typical ci / ca of the Ball-Berry model
        if (g <= 0.0_r8) g = merge(ci_ca_c3, ci_ca_c4, c3) * ca
        if (g > 0.0_r8 .and. g < hi0) then
          fg = ci_residual(g)
          if (abs(fg) < 1.0e-7_r8 * ca) then
            x = g
            done = .true.
          else
            ! the residual's slope is close to 1 (c_i,new depends little on c_i), so the root is about fg
            ! away: a bracket 1.1 |fg| wide usually holds it, and the first secant step of the loop below
            ! then meets the tolerance
            dg = max(1.1_r8 * abs(fg), 1.0e-6_r8 * ca)
            if (fg > 0.0_r8) then
              g2 = max(g - dg, 0.0_r8)
              f2 = ci_residual(g2)
              if (f2 <= 0.0_r8) then
                ! root in [g - dg, g]
                lo = g2
                flo = f2
                hi = g
                fhi = fg
                bracketed = .true.
              else if (g2 > 0.0_r8) then
                ! root below g - dg
                lo = 0.0_r8
                flo = ci_residual(lo)
                hi = g2
                fhi = f2
                bracketed = .true.
              end if
            else
              g2 = min(g + dg, hi0)
              f2 = ci_residual(g2)
              if (f2 > 0.0_r8) then
                ! root in [g, g + dg]
                lo = g
                flo = fg
                hi = g2
                fhi = f2
                bracketed = .true.
              else if (g2 < hi0) then
                ! root above g + dg
                lo = g2
                flo = f2
                hi = hi0
                fhi = ci_residual(hi)
                bracketed = .true.
              end if
            end if
          end if
        end if
      end if
      if (.not. bracketed .and. .not. done) then
        lo = 0.0_r8
        flo = ci_residual(lo)
        hi = hi0
        fhi = ci_residual(hi)
      end if
      if (.not. done) x = lo
      side = 0
      do it = 1, 200
        if (done) exit
        x = (lo * fhi - hi * flo) / (fhi - flo)
        fx = ci_residual(x)
        if (abs(fx) < 1.0e-7_r8 * ca .or. hi - lo < 1.0e-10_r8 * ca) exit
        if (fx > 0.0_r8) then
          hi = x
          fhi = fx
          if (side == 1) flo = 0.5_r8 * flo
          side = 1
        else
          lo = x
          flo = fx
          if (side == -1) fhi = 0.5_r8 * fhi
          side = -1
        end if
      end do
      ci = x
      ag = gross_assim(c3, vcmax, kc, ko, gammas, je, po2, psurf, ci)
      an = ag - rd
      cs = max(ca - 1.4_r8 * an * psurf / gb, cs_min)
      gs = ballberry_gs(an, cs, psurf, g1, bb, gb, hra)
    end if
    rs = psurf / (rgas_univ * tleaf * gs)

  contains

    ! ci - c_i,new(ci): negative at ci = 0, positive at the upper bound (see header).
    pure real(r8) function ci_residual(cix)
      real(r8), intent(in) :: cix                 ! trial intercellular CO2 (Pa)
      real(r8) :: a_g, a_n, c_s, g_s              ! (mol m-2 s-1, Pa)
      a_g = gross_assim(c3, vcmax, kc, ko, gammas, je, po2, psurf, cix)
      a_n = a_g - rd
      c_s = max(ca - 1.4_r8 * a_n * psurf / gb, cs_min)
      g_s = ballberry_gs(a_n, c_s, psurf, g1, bb, gb, hra)
      ci_residual = cix - (c_s - 1.6_r8 * a_n * psurf / g_s)
    end function ci_residual
  end subroutine leaf_photosynthesis

end module colm_photosynthesis
